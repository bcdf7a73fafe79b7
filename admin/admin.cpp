// Admin: the writes of the configuration tables, checked against the value schemas.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "admin/admin_impl.hpp"
#include "core/json_document.hpp"
#include "core/text.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config {
namespace {

using admin::Connection;
using admin::DbRow;
using nlohmann::json;

// jsonb rejects what JSON rejects; the agents refuse values nested deeper than
// kMaxValueDepth, and so does every writer.
constexpr std::size_t kMaxValueBytes = 64ULL << 20;

// One round trip per write (deploy/sql/003).
constexpr const char* kWriteSql =
    "SELECT status, revision FROM yuxi_config_write($1, $2, $3::jsonb, $4, $5, $6::bigint, "
    "$7::bigint)";
constexpr const char* kWriteManySql =
    "SELECT status, revision, namespace, key FROM yuxi_config_write_many($1::jsonb, $2::bigint)";
constexpr const char* kSchemasSql =
    "SELECT s.version, v.namespace, v.pattern, v.schema::text FROM "
    "yuxi_config_value_schemas_state s LEFT JOIN yuxi_config_value_schemas v ON true";

std::string ns_name(bool metadata) {
    return metadata ? "metadata" : "config";
}

std::string shown(bool metadata, std::string_view key) {
    return ns_name(metadata) + " '" + printable(key, 200) + "'";
}

// ", at line L column C" of a byte offset, for a syntax error.
std::string where_in(std::string_view text, std::size_t at) {
    if (at == 0) {
        return {};
    }
    at = std::min(at, text.size());
    std::size_t line = 1;
    std::size_t column = 1;
    for (std::size_t i = 0; i + 1 < at; ++i) {
        if (text[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    return ", at line " + std::to_string(line) + " column " + std::to_string(column);
}

std::optional<std::string> text_of(std::optional<std::uint64_t> n) {
    return n ? std::optional(std::to_string(*n)) : std::nullopt;
}

// The refusal of a compare-and-set, in words.
ConflictError conflict(bool metadata, std::string_view key, std::uint64_t if_revision,
                       std::uint64_t at) {
    std::string why;
    if (if_revision == 0) {
        why = "exists (last changed at revision " + std::to_string(at) +
              "); revision 0 writes only a key that does not exist";
    } else if (at <= if_revision) {
        why = "does not exist (last changed at revision " + std::to_string(at) +
              "); revision 0 creates a key only if it is absent";
    } else {
        why = "was changed at revision " + std::to_string(at) + ", after revision " +
              std::to_string(if_revision);
    }
    return ConflictError("conflict: " + shown(metadata, key) + " " + why +
                             "; nothing was written (read the key again and retry)",
                         std::string(key), at);
}

}  // namespace

std::string_view to_string(AdminError::Kind kind) noexcept {
    switch (kind) {
        case AdminError::Kind::usage:
            return "usage";
        case AdminError::Kind::conflict:
            return "conflict";
        case AdminError::Kind::invalid_value:
            return "invalid_value";
        case AdminError::Kind::unavailable:
            return "unavailable";
        case AdminError::Kind::timeout:
            return "timeout";
        case AdminError::Kind::rejected:
            return "rejected";
        case AdminError::Kind::not_found:
            return "not_found";
    }
    return "usage";
}

Admin::Impl::Impl(AdminOptions o) : options(std::move(o)) {
    auto t = admin::resolve_database(options.database_url);
    if (!t) {
        throw AdminError(AdminError::Kind::usage,
                         "no database: pass its URL or set DATABASE_URL (e.g. "
                         "postgresql://user:password@host:5432/yuxi_know)");
    }
    target = std::move(*t);
    db = std::make_unique<Connection>(target, options.application_name);
}

Admin::Impl::~Impl() = default;

void Admin::Impl::load_schemas() {
    const auto rows = db->query(kSchemasSql);
    std::vector<SchemaRule> rules;
    for (const DbRow& r : rows) {
        if (r.at(1)) {
            rules.push_back(
                {*r[1] == "metadata" ? Namespace::metadata : Namespace::config, *r[2], *r[3]});
        }
    }
    auto compiled = ValueSchemas::compile(std::move(rules));
    if (!compiled) {
        throw AdminError(AdminError::Kind::usage,
                         "the value schemas in " + target.shown + " cannot be used (" +
                             compiled.reason() +
                             "): fix or delete that schema (yuxi-configctl value-schema); "
                             "nothing was written");
    }
    schemas = std::move(*compiled);
    schemas_version = rows.empty() ? 0 : admin::to_u64(rows[0][0]);
    schemas_loaded = true;
}

const ValueSchemas& Admin::Impl::current_schemas() {
    if (!schemas_loaded) {
        load_schemas();
    }
    return schemas;
}

json Admin::Impl::checked_value(bool metadata, std::string_view key, std::string_view text) {
    if (key.empty()) {
        throw AdminError(AdminError::Kind::usage, "a key cannot be empty");
    }
    if (metadata && key == kValueSchemasKey) {
        throw AdminError(AdminError::Kind::usage,
                         "metadata '" + std::string(kValueSchemasKey) +
                             "' mirrors the value schemas: write them with value-schema set");
    }
    std::size_t at = 0;
    auto doc = parse_json(text, {kMaxValueBytes, kMaxValueDepth}, &at);
    if (!doc) {
        throw AdminError(AdminError::Kind::usage,
                         "the value of " + shown(metadata, key) + " is not valid JSON (" +
                             doc.reason() + where_in(text, at) +
                             "); a JSON string needs its quotes: '\"text\"'; nothing was written");
    }
    const Namespace ns = metadata ? Namespace::metadata : Namespace::config;
    if (const auto v = current_schemas().validate(ns, key, *doc)) {
        throw InvalidValueError(shown(metadata, key) + " breaks its schema (pattern '" +
                                    printable(v->pattern) + "'): " + v->message() +
                                    "; nothing was written",
                                std::string(key), v->pointer,
                                v->detail.empty() ? v->rule : v->rule + " (" + v->detail + ")");
    }
    return std::move(*doc);
}

WriteResult Admin::Impl::write_one(std::string_view key,
                                   const std::optional<std::string_view>& text,
                                   const WriteOptions& o) {
    if (o.metadata && o.category) {
        throw AdminError(AdminError::Kind::usage,
                         "a category is for config keys; metadata has no category");
    }
    const std::optional<std::string> new_category =
        o.metadata ? std::nullopt : default_category(key);
    for (int attempt = 0;; ++attempt) {
        if (text) {
            (void)checked_value(o.metadata, key, *text);
        } else {
            (void)current_schemas();
        }
        const auto rows = db->prepared(
            "yuxi_config_write", kWriteSql,
            {ns_name(o.metadata), std::string(key),
             text ? std::optional<std::string>(std::string(*text)) : std::nullopt, o.category,
             new_category, text_of(o.if_revision), std::to_string(schemas_version)});
        const DbRow& r = rows.at(0);
        const std::string status = r.at(0).value_or("");
        const std::uint64_t revision = admin::to_u64(r.at(1));
        if (status == "schemas" && attempt < 3) {
            load_schemas();  // changed since they were read: check again with the new ones
            continue;
        }
        if (status == "conflict") {
            throw conflict(o.metadata, key, o.if_revision.value_or(0), revision);
        }
        if (status == "written" && r.at(1)) {
            return {revision, true};
        }
        if (status == "unchanged") {
            return {revision, false};
        }
        throw AdminError(AdminError::Kind::unavailable,
                         "the write of " + shown(o.metadata, key) + " to " + target.shown +
                             " ended as '" + status +
                             "': are the triggers of deploy/sql installed? run `yuxi-configctl "
                             "schema apply`");
    }
}

WriteResult Admin::Impl::write_many(const std::vector<Write>& writes, bool exact_categories) {
    // A key written twice: the later write wins, in the place of the first.
    std::vector<const Write*> unique;
    std::map<std::pair<bool, std::string>, std::size_t> index;
    for (const Write& w : writes) {
        const auto [it, inserted] = index.try_emplace({w.options.metadata, w.key}, unique.size());
        if (inserted) {
            unique.push_back(&w);
        } else {
            unique[it->second] = &w;
        }
    }
    for (int attempt = 0;; ++attempt) {
        json items = json::array();
        for (const Write* w : unique) {
            const WriteOptions& o = w->options;
            if (o.metadata && o.category) {
                throw AdminError(AdminError::Kind::usage,
                                 "a category is for config keys; metadata has no category");
            }
            json item = {{"namespace", ns_name(o.metadata)}, {"key", w->key}};
            if (w->value) {
                item["value"] = checked_value(o.metadata, w->key, *w->value);
            } else if (w->key.empty()) {
                throw AdminError(AdminError::Kind::usage, "a key cannot be empty");
            }
            if (o.category) {
                item["category"] = *o.category;
            } else if (exact_categories && !o.metadata) {
                item["category"] = nullptr;
            }
            if (const auto c = o.metadata ? std::nullopt : default_category(w->key)) {
                item["new_category"] = *c;
            }
            if (o.if_revision) {
                item["if_revision"] = *o.if_revision;
            }
            items.push_back(std::move(item));
        }
        (void)current_schemas();
        const auto rows = db->prepared("yuxi_config_write_many", kWriteManySql,
                                       {items.dump(-1, ' ', false, json::error_handler_t::strict),
                                        std::to_string(schemas_version)});
        const DbRow& r = rows.at(0);
        const std::string status = r.at(0).value_or("");
        const std::uint64_t revision = admin::to_u64(r.at(1));
        if (status == "schemas" && attempt < 3) {
            load_schemas();
            continue;
        }
        if (status == "conflict") {
            const std::string key = r.at(3).value_or("");
            const bool metadata = r.at(2) == "metadata";
            const auto it = index.find({metadata, key});
            const std::uint64_t wanted =
                it == index.end() ? 0 : unique[it->second]->options.if_revision.value_or(0);
            throw conflict(metadata, key, wanted, revision);
        }
        if ((status == "written" && r.at(1)) || status == "unchanged") {
            return {revision, status == "written"};
        }
        throw AdminError(AdminError::Kind::unavailable,
                         "the write to " + target.shown + " ended as '" + status +
                             "': are the triggers of deploy/sql installed? run `yuxi-configctl "
                             "schema apply`");
    }
}

Admin::Admin(AdminOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Admin::~Admin() = default;
Admin::Admin(Admin&&) noexcept = default;
Admin& Admin::operator=(Admin&&) noexcept = default;

const std::string& Admin::database() const noexcept {
    return impl_->target.shown;
}

WriteResult Admin::set(std::string_view key, std::string_view json_text,
                       const WriteOptions& options) {
    return impl_->write_one(key, json_text, options);
}

WriteResult Admin::remove(std::string_view key, const WriteOptions& options) {
    if (options.category) {
        throw AdminError(AdminError::Kind::usage, "a delete takes no category");
    }
    return impl_->write_one(key, std::nullopt, options);
}

std::optional<KeyValue> Admin::get(std::string_view key, bool metadata) {
    const auto rows = impl_->db->query(
        metadata ? "SELECT content::text, NULL, yuxi_config_key_revision('metadata', key) FROM "
                   "global_metadata WHERE key = $1"
                 : "SELECT value::text, category, yuxi_config_key_revision('config', key) FROM "
                   "system_configs WHERE key = $1",
        {std::string(key)});
    if (rows.empty()) {
        return std::nullopt;
    }
    return KeyValue{rows[0][0].value_or("null"), rows[0][1], admin::to_u64(rows[0][2])};
}

WriteResult Admin::set_many(const std::vector<Write>& writes) {
    if (writes.empty()) {
        return {revision(), false};
    }
    return impl_->write_many(writes);
}

void Admin::check_value(std::string_view key, std::string_view json_text, bool metadata) {
    impl_->load_schemas();
    (void)impl_->checked_value(metadata, key, json_text);
}

std::uint64_t Admin::revision() {
    return admin::database_revision(*impl_->db);
}

std::vector<HistoryEntry> Admin::history(std::string_view key, bool metadata, std::size_t limit) {
    Connection& db = *impl_->db;
    const auto rows = db.query(
        "SELECT revision, to_char(changed_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), changed_by, op, old_value::text, "
        "new_value::text, category FROM yuxi_config_changes WHERE namespace = $1 AND key = $2 "
        "ORDER BY revision DESC LIMIT $3",
        {ns_name(metadata), std::string(key), std::to_string(std::max<std::size_t>(limit, 1))});
    if (rows.empty()) {
        const admin::KeyRevision kr = admin::key_revision(db, ns_name(metadata), key);
        throw AdminError(AdminError::Kind::not_found,
                         "no change of " + shown(metadata, key) + " in the log" +
                             (kr.trimmed_through != 0 ? " (trimmed through revision " +
                                                            std::to_string(kr.trimmed_through) + ")"
                                                      : std::string()));
    }
    std::vector<HistoryEntry> out;
    for (const DbRow& r : rows) {
        out.push_back({admin::to_u64(r[0]), r[1].value_or(""), r[2].value_or(""),
                       r[3].value_or("U").front(), r[4], r[5], r[6]});
    }
    return out;
}

admin::Connection& Admin::Impl::connection() {
    return *db;
}

namespace {

// Histories found rewound by a failover (deploy/sql/003_high_availability.sql): none on a
// schema without the table.
std::vector<Rewind> rewinds(Connection& db) {
    std::vector<Rewind> out;
    if (!db.scalar("SELECT to_regclass('yuxi_config_rewinds')::text")) {
        return out;
    }
    const auto rows = db.query(
        "SELECT first_lost, last_applied, database_revision, "
        "       to_char(min(detected_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "       count(*) FROM yuxi_config_rewinds "
        "GROUP BY 1, 2, 3 ORDER BY min(detected_at) DESC LIMIT 20");
    for (const DbRow& r : rows) {
        out.push_back({admin::to_u64(r[0]), admin::to_u64(r[1]), admin::to_u64(r[2]),
                       r[3].value_or(""), admin::to_u64(r[4])});
    }
    return out;
}

}  // namespace

LogStatus Admin::log_status() {
    Connection& db = *impl_->db;
    const auto rows = db.query(
        "SELECT min(revision), max(revision), count(*), (SELECT trimmed_through FROM "
        "yuxi_config_log_state) FROM yuxi_config_changes");
    const DbRow& r = rows.at(0);
    LogStatus s;
    if (r[0]) {
        s.oldest = admin::to_u64(r[0]);
        s.newest = admin::to_u64(r[1]);
    }
    s.rows = admin::to_u64(r[2]);
    s.trimmed_through = admin::to_u64(r[3]);
    s.database_revision = admin::database_revision(db);
    s.rewinds = rewinds(db);
    return s;
}

std::pair<std::uint64_t, std::uint64_t> Admin::trim_log(std::uint64_t keep) {
    Connection& db = *impl_->db;
    db.begin();
    try {
        db.lock_log();
        const auto cut_at = db.scalar(
            "SELECT revision FROM yuxi_config_changes ORDER BY revision DESC OFFSET $1 LIMIT 1",
            {std::to_string(keep)});
        if (!cut_at) {
            db.rollback();
            return {0, 0};
        }
        const auto deleted = db.scalar(
            "WITH d AS (DELETE FROM yuxi_config_changes WHERE revision <= $1 RETURNING 1) "
            "SELECT count(*) FROM d",
            {*cut_at});
        db.query("UPDATE yuxi_config_log_state SET trimmed_through = greatest(trimmed_through, $1)",
                 {*cut_at});
        db.commit();
        return {admin::to_u64(deleted), admin::to_u64(cut_at)};
    } catch (...) {
        db.rollback();
        throw;
    }
}

void Admin::wait(std::uint64_t revision, WaitScope scope, std::chrono::milliseconds timeout) {
    if (scope == WaitScope::fleet) {
        (void)fleet().wait(revision, timeout);
        return;
    }
    if (!impl_->segment) {
        try {
            impl_->segment.emplace(Client::open(impl_->options.segment));
        } catch (const SegmentError& e) {
            throw AdminError(AdminError::Kind::usage, e.what());
        }
    }
    const Client& c = *impl_->segment;
    if (!c.wait_for_revision(revision, timeout)) {
        throw WaitError(AdminError::Kind::timeout,
                        "segment '" + c.name() + "' still shows revision " +
                            std::to_string(c.revision()) + ", not " + std::to_string(revision) +
                            ", after " + std::to_string(timeout.count()) +
                            " ms; is its agent running in database mode on this database? "
                            "(yuxi-configctl status)",
                        revision, {});
    }
}

Fleet& Admin::fleet() {
    if (!impl_->fleet) {
        RedisEndpoint e;
        if (impl_->options.redis) {
            e = *impl_->options.redis;
        } else {
            try {
                e = RedisEndpoint::from_env();
            } catch (const std::invalid_argument& x) {
                throw AdminError(AdminError::Kind::usage, x.what());
            }
        }
        if (e.host.empty() && !e.uses_sentinel()) {
            throw AdminError(AdminError::Kind::usage,
                             "waiting for the fleet needs Redis: set REDIS_HOST (and REDIS_PORT) "
                             "or REDIS_SENTINELS");
        }
        impl_->fleet.emplace(std::move(e), impl_->options.stale_after, impl_->options.trust);
    }
    return *impl_->fleet;
}

}  // namespace yuxi::config
