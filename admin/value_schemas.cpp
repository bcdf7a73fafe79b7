// Admin's value schemas: the table yuxi_config_value_schemas, checked before it is written.
#include "admin/admin_impl.hpp"
#include "core/text.hpp"

namespace yuxi::config {
namespace {

using admin::Connection;
using admin::DbRow;

std::string ns_name(Namespace ns) {
    return ns == Namespace::config ? "config" : "metadata";
}

std::vector<SchemaRule> table_rules(Connection& db) {
    std::vector<SchemaRule> out;
    for (const DbRow& r :
         db.query("SELECT namespace, pattern, schema::text FROM yuxi_config_value_schemas")) {
        out.push_back(
            {*r[0] == "metadata" ? Namespace::metadata : Namespace::config, *r[1], *r[2]});
    }
    return out;
}

// The values each new rule governs, checked against it: the first that breaks its rule
// refuses the schemas (unless forced), so that a schema never turns good values into
// values every agent refuses.
void check_governed(Connection& db, const ValueSchemas& all, const std::vector<SchemaRule>& added) {
    for (const Namespace ns : {Namespace::config, Namespace::metadata}) {
        bool any = false;
        for (const SchemaRule& r : added) {
            any = any || r.ns == ns;
        }
        if (!any) {
            continue;
        }
        const auto rows = db.query(ns == Namespace::config
                                       ? "SELECT key, value::text FROM system_configs ORDER BY key"
                                       : "SELECT key, content::text FROM global_metadata "
                                         "ORDER BY key");
        for (const DbRow& row : rows) {
            const SchemaRule* rule = all.rule_for(ns, *row[0]);
            if (rule == nullptr) {
                continue;
            }
            bool is_new = false;
            for (const SchemaRule& r : added) {
                is_new = is_new || (r.ns == ns && r.pattern == rule->pattern);
            }
            if (!is_new) {
                continue;
            }
            if (const auto v = all.validate_text(ns, *row[0], *row[1])) {
                throw InvalidValueError(
                    ns_name(ns) + " '" + printable(*row[0], 200) + "' breaks the schema of '" +
                        printable(rule->pattern) + "' as it stands: " + v->message() +
                        "; nothing was written (fix the value first, or force the schema)",
                    *row[0], v->pointer, v->rule + " (" + v->detail + ")");
            }
        }
    }
}

ValueSchemaInfo info_of(const DbRow& r) {
    return {r[0] == "metadata", r[1].value_or(""), r[2].value_or(""), r[3].value_or(""),
            r[4].value_or("")};
}

constexpr const char* kSelect =
    "SELECT namespace, pattern, schema::text, updated_by, to_char(updated_at AT TIME ZONE "
    "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') FROM yuxi_config_value_schemas";

}  // namespace

// Writes `added` in one transaction, after checking them, the whole set they make, and
// (unless forced) the values they govern.
void Admin::Impl::put_schemas(const std::vector<SchemaRule>& added, bool force) {
    for (const SchemaRule& r : added) {
        const std::string where = ns_name(r.ns) + " pattern '" + printable(r.pattern) + "'";
        if (const auto why = check_key_pattern(r.pattern)) {
            throw AdminError(AdminError::Kind::usage, where + ": " + *why);
        }
        if (const auto why = check_schema(r.schema)) {
            throw AdminError(AdminError::Kind::usage,
                             "the schema of " + where + " cannot be used: " + *why);
        }
    }
    Connection& conn = *db;
    conn.begin();
    try {
        conn.lock_log();
        std::vector<SchemaRule> rules = table_rules(conn);
        for (const SchemaRule& r : added) {
            std::erase_if(
                rules, [&](const SchemaRule& x) { return x.ns == r.ns && x.pattern == r.pattern; });
            rules.push_back(r);
        }
        auto all = ValueSchemas::compile(rules);
        if (!all) {
            throw AdminError(AdminError::Kind::usage, all.reason());
        }
        if (!force) {
            check_governed(conn, *all, added);
        }
        for (const SchemaRule& r : added) {
            conn.query(
                "INSERT INTO yuxi_config_value_schemas (namespace, pattern, schema) VALUES ($1, "
                "$2, $3::jsonb) ON CONFLICT (namespace, pattern) DO UPDATE SET schema = "
                "EXCLUDED.schema, updated_by = current_user, updated_at = now()",
                {ns_name(r.ns), r.pattern, r.schema});
        }
        conn.commit();
    } catch (...) {
        conn.rollback();
        throw;
    }
    schemas_loaded = false;
}

void Admin::set_value_schema(std::string_view pattern, std::string_view schema, bool metadata,
                             bool force) {
    impl_->put_schemas({{metadata ? Namespace::metadata : Namespace::config, std::string(pattern),
                         std::string(schema)}},
                       force);
}

std::vector<std::string> Admin::import_value_schemas(std::string_view model_schema, bool force) {
    auto rules = rules_from_model_schema(model_schema);
    if (!rules) {
        throw AdminError(AdminError::Kind::usage, rules.reason());
    }
    impl_->put_schemas(*rules, force);
    std::vector<std::string> out;
    for (const SchemaRule& r : *rules) {
        out.push_back(r.pattern);
    }
    return out;
}

std::optional<ValueSchemaInfo> Admin::value_schema(std::string_view pattern, bool metadata) {
    const auto rows =
        impl_->connection().query(std::string(kSelect) + " WHERE namespace = $1 AND pattern = $2",
                                  {metadata ? "metadata" : "config", std::string(pattern)});
    if (rows.empty()) {
        return std::nullopt;
    }
    return info_of(rows[0]);
}

std::vector<ValueSchemaInfo> Admin::value_schemas() {
    std::vector<ValueSchemaInfo> out;
    for (const DbRow& r :
         impl_->connection().query(std::string(kSelect) + " ORDER BY namespace, pattern")) {
        out.push_back(info_of(r));
    }
    return out;
}

bool Admin::remove_value_schema(std::string_view pattern, bool metadata) {
    const auto rows = impl_->connection().query(
        "DELETE FROM yuxi_config_value_schemas WHERE namespace = $1 AND pattern = $2 RETURNING 1",
        {metadata ? "metadata" : "config", std::string(pattern)});
    impl_->schemas_loaded = false;
    return !rows.empty();
}

}  // namespace yuxi::config
