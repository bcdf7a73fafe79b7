// set, delete, rollback, history, log and wait: thin callers of the admin library.
#include "cli/write_commands.hpp"

#include <nlohmann/json.hpp>
#include <ostream>

namespace yuxi::config::cli {
namespace {

using OrderedJson = nlohmann::ordered_json;

std::string ns_of(const KeyArg& k) {
    return k.metadata ? "metadata" : "config";
}

// jsonb's text ({"a": 1}) as compact JSON ({"a":1}), keeping jsonb's key order.
std::string compact(const std::string& jsonb_text) {
    const auto j = OrderedJson::parse(jsonb_text, nullptr, false);
    return j.is_discarded() ? jsonb_text
                            : j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

std::string cut(const std::string& s, std::size_t max) {
    if (s.size() <= max) {
        return s;
    }
    std::size_t n = max - 3;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;  // not in the middle of a UTF-8 sequence
    }
    return s.substr(0, n) + "...";
}

void print_result(bool json, const KeyArg& k, std::string_view op, const WriteResult& r,
                  std::ostream& out) {
    if (json) {
        out << "{\"namespace\":" << quote(ns_of(k)) << ",\"key\":" << quote(k.key)
            << ",\"op\":" << quote(op) << ",\"revision\":" << r.revision
            << ",\"changed\":" << (r.changed ? "true" : "false") << "}\n";
    } else if (r.changed) {
        out << "revision " << r.revision << '\n';
    } else {
        out << "unchanged (revision " << r.revision << ")\n";
    }
    out.flush();
}

// A write's refusal by compare-and-set: the JSON result names it too.
Exit conflicted(bool json, const KeyArg& k, const ConflictError& e, Io io) {
    if (json) {
        io.out << "{\"namespace\":" << quote(ns_of(k)) << ",\"key\":" << quote(k.key)
               << ",\"conflict\":true,\"revision\":" << e.revision() << "}\n";
    }
    io.err << "yuxi-configctl: " << e.what() << '\n';
    return Exit::conflict;
}

WriteOptions options_of(const KeyArg& k, std::optional<std::uint64_t> if_revision,
                        std::optional<std::string> category = std::nullopt) {
    WriteOptions o;
    o.metadata = k.metadata;
    o.if_revision = if_revision;
    o.category = std::move(category);
    return o;
}

}  // namespace

Exit run(const SetRequest& r, Io io) {
    Admin admin = open_admin(r.db, &r.wait);
    admin.check_value(r.key.key, r.value, r.key.metadata);  // bad input: nothing waited for
    Waits waits(admin, r.db, r.wait);
    WriteResult result;
    try {
        result = admin.set(r.key.key, r.value, options_of(r.key, r.if_revision, r.category));
    } catch (const ConflictError& e) {
        return conflicted(r.json, r.key, e, io);
    }
    print_result(r.json, r.key, "set", result, io.out);
    return waits.finish(result.revision, io.err);
}

Exit run(const DeleteRequest& r, Io io) {
    Admin admin = open_admin(r.db, &r.wait);
    Waits waits(admin, r.db, r.wait);
    WriteResult result;
    try {
        result = admin.remove(r.key.key, options_of(r.key, r.if_revision));
    } catch (const ConflictError& e) {
        return conflicted(r.json, r.key, e, io);
    }
    if (!result.changed) {
        io.err << "yuxi-configctl: no " << ns_of(r.key) << " '" << r.key.key << "' in "
               << admin.database() << "; nothing deleted\n";
        return Exit::not_found;
    }
    print_result(r.json, r.key, "delete", result, io.out);
    return waits.finish(result.revision, io.err);
}

Exit run(const RollbackRequest& r, Io io) {
    Admin admin = open_admin(r.db, &r.wait);
    Waits waits(admin, r.db, r.wait);
    const RollbackResult result =
        admin.rollback_to(r.to_revision, std::pair(r.key.key, r.key.metadata));
    const bool deleted = !result.keys.empty() && result.keys[0].deleted;
    if (deleted && result.changed) {
        io.err << "yuxi-configctl: " << ns_of(r.key) << " '" << r.key.key
               << "' did not exist at revision " << r.to_revision << "; deleting it\n";
    }
    print_result(r.json, r.key, deleted ? "delete" : "set", {result.revision, result.changed},
                 io.out);
    return waits.finish(result.revision, io.err);
}

Exit run(const HistoryRequest& r, Io io) {
    Admin admin = open_admin(r.db);
    std::vector<HistoryEntry> rows;
    try {
        rows = admin.history(r.key.key, r.key.metadata, r.limit);
    } catch (const AdminError& e) {
        if (e.kind() != AdminError::Kind::not_found) {
            throw;
        }
        io.err << "yuxi-configctl: " << e.what() << '\n';
        if (r.json) {
            io.out << "[]\n";
        }
        return Exit::not_found;
    }
    const auto value = [](const std::optional<std::string>& v) {
        return v ? compact(*v) : std::string("null");
    };
    if (r.json) {
        io.out << '[';
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const HistoryEntry& h = rows[i];
            io.out << (i != 0 ? "," : "") << "{\"revision\":" << h.revision
                   << ",\"changed_at\":" << quote(h.changed_at)
                   << ",\"changed_by\":" << quote(h.changed_by) << ",\"op\":\"" << h.op
                   << "\",\"old_value\":" << value(h.old_value)
                   << ",\"new_value\":" << value(h.new_value)
                   << ",\"category\":" << (h.category ? quote(*h.category) : "null") << '}';
        }
        io.out << "]\n";
        return Exit::ok;
    }
    for (const HistoryEntry& h : rows) {
        const std::string old_v = h.old_value ? cut(compact(*h.old_value), 60) : "(absent)";
        const std::string new_v = h.new_value ? cut(compact(*h.new_value), 60) : "(deleted)";
        io.out << h.revision << "  " << h.changed_at << "  " << h.changed_by << "  " << h.op << "  "
               << old_v << " -> " << new_v << '\n';
    }
    return Exit::ok;
}

Exit run(const LogRequest& r, Io io) {
    Admin admin = open_admin(r.db);
    if (r.trim_keep) {
        const auto [deleted, cut_at] = admin.trim_log(*r.trim_keep);
        if (cut_at == 0) {
            io.out << "nothing to trim: the log has at most " << *r.trim_keep << " rows\n";
        } else {
            io.out << "trimmed " << deleted << " rows through revision " << cut_at
                   << "; the log keeps the newest " << *r.trim_keep << '\n';
        }
        return Exit::ok;
    }
    const LogStatus s = admin.log_status();
    const auto num = [](const std::optional<std::uint64_t>& v) {
        return v ? std::to_string(*v) : std::string("null");
    };
    if (r.json) {
        io.out << "{\"oldest_revision\":" << num(s.oldest)
               << ",\"newest_revision\":" << num(s.newest) << ",\"rows\":" << s.rows
               << ",\"trimmed_through\":" << s.trimmed_through
               << ",\"database_revision\":" << s.database_revision << ",\"rewinds\":[";
        for (std::size_t i = 0; i < s.rewinds.size(); ++i) {
            const Rewind& w = s.rewinds[i];
            io.out << (i ? "," : "") << "{\"first_lost\":" << w.first_lost
                   << ",\"last_applied\":" << w.last_applied
                   << ",\"database_revision\":" << w.database_revision << ",\"detected_at\":\""
                   << w.detected_at << "\",\"agents\":" << w.agents << "}";
        }
        io.out << "]}\n";
        return Exit::ok;
    }
    io.out << "revisions        "
           << (s.oldest ? num(s.oldest) + " .. " + num(s.newest) : std::string("(empty)")) << '\n'
           << "rows             " << s.rows << '\n'
           << "trimmed through  " << s.trimmed_through << '\n'
           << "database revision " << s.database_revision << '\n';
    if (s.rewinds.empty()) {
        io.out << "history rewound  never\n";
    }
    for (const Rewind& w : s.rewinds) {
        io.out << "history rewound  at " << w.detected_at << ": revisions " << w.first_lost << ".."
               << w.last_applied << " lost in a failover (database then at " << w.database_revision
               << "; seen by " << w.agents << " agent(s))\n";
    }
    return Exit::ok;
}

Exit run(const WaitRequest& r, Io io) {
    Admin admin = open_admin(r.db, &r.wait);
    const std::uint64_t revision = r.revision ? *r.revision : admin.revision();
    const auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::duration<double>(r.wait.timeout.value_or(r.wait.all ? 30.0 : 10.0)));
    std::size_t agents = 0;
    if (r.wait.all) {
        agents = admin.fleet().wait(revision, timeout);
        for (const std::string& w : admin.fleet().take_warnings()) {
            io.err << "yuxi-configctl: warning: " << w << '\n';
        }
    } else {
        admin.wait(revision, WaitScope::local, timeout);
    }
    if (r.json) {
        io.out << "{\"revision\":" << revision << ",\"scope\":\""
               << (r.wait.all ? "fleet" : "local") << "\"";
        if (r.wait.all) {
            io.out << ",\"agents\":" << agents;
        }
        io.out << "}\n";
    } else if (r.wait.all) {
        io.out << "revision " << revision << " applied by " << agents << " live agent(s)\n";
    } else {
        io.out << "revision " << revision << " is in the segment\n";
    }
    return Exit::ok;
}

}  // namespace yuxi::config::cli
