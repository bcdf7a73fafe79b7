// Admin::rollback_to: keys back to the values they had right after a revision, from the log.
#include <set>

#include "admin/admin_impl.hpp"
#include "core/text.hpp"

namespace yuxi::config {
namespace {

using admin::Connection;

// A key as it was right after revision `n`: the log's latest change at or before n; if
// none, the first change after n tells what it replaced (its old value). Valid only if n is
// at or past the trim watermark, below which rows are gone.
struct PastState {
    std::optional<std::string> value;  // nothing: the key did not exist
    std::optional<std::string> category;
};

PastState state_at(Connection& db, const std::string& ns, const std::string& key, std::uint64_t n) {
    const std::string rev = std::to_string(n);
    auto rows = db.query(
        "SELECT op, new_value::text, category FROM yuxi_config_changes WHERE namespace = $1 AND "
        "key = $2 AND revision <= $3 ORDER BY revision DESC LIMIT 1",
        {ns, key, rev});
    if (!rows.empty()) {
        return {rows[0][0] == "U" ? rows[0][1] : std::nullopt, rows[0][2]};
    }
    rows = db.query(
        "SELECT old_value::text FROM yuxi_config_changes WHERE namespace = $1 AND key = $2 AND "
        "revision > $3 ORDER BY revision LIMIT 1",
        {ns, key, rev});
    if (!rows.empty()) {
        return {rows[0][0], std::nullopt};  // the category stays what it is
    }
    // No change on either side of n: as it is now.
    rows = db.query(ns == "config" ? "SELECT value::text FROM system_configs WHERE key = $1"
                                   : "SELECT content::text FROM global_metadata WHERE key = $1",
                    {key});
    return {rows.empty() ? std::nullopt : rows[0][0], std::nullopt};
}

}  // namespace

RollbackResult Admin::rollback_to(std::uint64_t n,
                                  std::optional<std::pair<std::string, bool>> key) {
    Connection& db = impl_->connection();
    db.begin();
    try {
        db.lock_log();
        const std::uint64_t trimmed =
            admin::to_u64(db.scalar("SELECT trimmed_through FROM yuxi_config_log_state"));
        if (n < trimmed) {
            throw AdminError(AdminError::Kind::not_found,
                             "the change log was trimmed through revision " +
                                 std::to_string(trimmed) + ", so the state " +
                                 (key ? "of " + std::string(key->second ? "metadata" : "config") +
                                            " '" + printable(key->first, 200) + "' "
                                      : std::string()) +
                                 "at revision " + std::to_string(n) +
                                 " is no longer known; the oldest revision rollback can reach is " +
                                 std::to_string(trimmed) + "; nothing was written");
        }
        std::vector<std::pair<std::string, std::string>> keys;
        if (key) {
            keys.emplace_back(key->second ? "metadata" : "config", key->first);
        } else {
            for (const auto& r : db.query("SELECT DISTINCT namespace, key FROM yuxi_config_changes "
                                          "WHERE revision > $1 ORDER BY 1, 2",
                                          {std::to_string(n)})) {
                keys.emplace_back(*r[0], *r[1]);
            }
        }
        std::vector<Write> writes;
        RollbackResult out;
        for (const auto& [ns, k] : keys) {
            if (ns == "metadata" && k == kValueSchemasKey) {
                continue;  // follows the schema table; value-schema commands restore it
            }
            PastState past = state_at(db, ns, k, n);
            Write w;
            w.key = k;
            w.value = std::move(past.value);
            w.options.metadata = ns == "metadata";
            if (!w.options.metadata) {
                w.options.category = std::move(past.category);
            }
            out.keys.push_back({ns, k, !w.value});
            writes.push_back(std::move(w));
        }
        const WriteResult r = writes.empty() ? WriteResult{admin::database_revision(db), false}
                                             : impl_->write_many(writes, true);
        db.commit();
        out.revision = r.revision;
        out.changed = r.changed;
        return out;
    } catch (...) {
        db.rollback();
        throw;
    }
}

}  // namespace yuxi::config
