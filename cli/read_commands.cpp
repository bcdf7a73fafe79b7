// get, list, dump, watch, status and health: reading the segment through the public client.
#include "cli/read_commands.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "yuxi/config/client.hpp"

namespace yuxi::config::cli {
namespace {

using OrderedJson = nlohmann::ordered_json;

std::string_view namespace_name(Namespace ns) {
    return ns == Namespace::metadata ? "metadata" : "config";
}

std::string_view source_state_name(SourceState s) {
    return to_string(s);
}

// A JSON string literal of `s`. Invalid UTF-8 (which no source should produce) is replaced
// rather than refused, so that inspection still works on odd data.
std::string quote(std::string_view s) {
    return OrderedJson(std::string(s)).dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

// The JSON text of a value as it goes into a larger JSON document: as stored when it is
// valid JSON, else as a JSON string of its bytes, so that the document stays parseable.
std::string embeddable(std::string_view value, std::ostream& err, std::string_view key) {
    if (OrderedJson::accept(value)) {
        return std::string(value);
    }
    err << "yuxi-configctl: warning: the value of '" << key
        << "' is not valid JSON; printed as a string\n";
    return quote(value);
}

std::string pretty(std::string_view value) {
    auto j = OrderedJson::parse(value, nullptr, false);
    if (j.is_discarded()) {
        return std::string(value);
    }
    return j.dump(2, ' ', false, OrderedJson::error_handler_t::replace);
}

// A JSON string without its quotes and escapes; any other JSON as its text.
std::string unquoted(std::string_view value) {
    auto j = OrderedJson::parse(value, nullptr, false);
    if (!j.is_discarded() && j.is_string()) {
        return j.get<std::string>();
    }
    return std::string(value);
}

Namespace namespace_of(bool metadata) {
    return metadata ? Namespace::metadata : Namespace::config;
}

std::vector<std::pair<std::string, std::string>> sorted_entries(const Snapshot& snap, Namespace ns,
                                                                std::string_view prefix,
                                                                bool& intact) {
    std::vector<std::pair<std::string, std::string>> entries;
    intact = snap.for_each(ns, prefix, [&](const EntryInfo& e) {
        entries.emplace_back(std::string(e.key), std::string(e.value));
    }) && intact;
    std::sort(entries.begin(), entries.end());
    return entries;
}

void report_corrupt(std::ostream& err) {
    err << "yuxi-configctl: the segment has damaged entries; they were left out (restart "
           "the agent to rebuild it)\n";
}

Exit get(const Client& client, const GetRequest& r, std::ostream& out, std::ostream& err) {
    const Namespace ns = namespace_of(r.key.metadata);
    const std::string& key = r.key.key;
    const std::optional<Value> v = client.view(key, ns);
    if (!v) {
        err << "yuxi-configctl: no " << namespace_name(ns) << " key '" << key << "' in segment '"
            << client.name() << "' (revision " << client.revision() << ")\n";
        return Exit::not_found;
    }
    if (r.form == GetRequest::Form::raw) {
        out << unquoted(v->data()) << '\n';
    } else if (r.form == GetRequest::Form::pretty) {
        out << pretty(v->data()) << '\n';
    } else if (r.form == GetRequest::Form::json) {
        out << "{\"namespace\":" << quote(namespace_name(ns)) << ",\"key\":" << quote(key)
            << ",\"value\":" << embeddable(v->data(), err, key) << ",\"revision\":" << v->revision()
            << ",\"category\":" << quote(v->category()) << "}\n";
    } else {
        out << v->data() << '\n';
    }
    return Exit::ok;
}

Exit list(const Client& client, const ListRequest& r, std::ostream& out, std::ostream& err) {
    const Snapshot snap = client.snapshot();
    bool intact = true;
    const auto entries = sorted_entries(snap, namespace_of(r.metadata), r.prefix, intact);
    if (!intact) {
        report_corrupt(err);
    }
    if (r.json) {
        out << '[';
        for (std::size_t i = 0; i < entries.size(); ++i) {
            out << (i != 0 ? "," : "") << quote(entries[i].first);
        }
        out << "]\n";
    } else {
        for (const auto& e : entries) {
            out << e.first << '\n';
        }
    }
    return entries.empty() ? Exit::not_found : Exit::ok;
}

Exit dump(const Client& client, const DumpRequest& r, std::ostream& out, std::ostream& err) {
    const Snapshot snap = client.snapshot();
    bool intact = true;
    const auto config = sorted_entries(snap, Namespace::config, "", intact);
    const auto metadata = sorted_entries(snap, Namespace::metadata, "", intact);
    if (!intact) {
        report_corrupt(err);
    }
    if (r.json) {
        std::string doc = "{\"revision\":" + std::to_string(snap.revision());
        for (const auto& [name, entries] :
             {std::pair{"config", &config}, {"metadata", &metadata}}) {
            doc += std::string(",\"") + name + "\":{";
            for (std::size_t i = 0; i < entries->size(); ++i) {
                const auto& [key, value] = (*entries)[i];
                // Appended piece by piece: GCC 12 at -O3 reports a false -Wrestrict on
                // `"," + std::string&&` (GCC bug 105651).
                doc += i != 0 ? "," : "";
                doc += quote(key);
                doc += ':';
                doc += embeddable(value, err, key);
            }
            doc += "}";
        }
        doc += "}";
        out << (r.pretty ? pretty(doc) : doc) << '\n';
        return Exit::ok;
    }
    out << "# segment " << client.name() << ", revision " << snap.revision() << '\n';
    for (const auto& [name, entries] : {std::pair{"config", &config}, {"metadata", &metadata}}) {
        out << '[' << name << "]\n";
        for (const auto& [key, value] : *entries) {
            out << key << " = " << value << '\n';
        }
    }
    return Exit::ok;
}

Exit watch(const Client& client, const WatchRequest& r, std::ostream& out, std::ostream& err) {
    const Namespace ns = namespace_of(r.metadata);
    using Clock = std::chrono::steady_clock;
    std::optional<Clock::time_point> deadline;
    if (r.timeout) {
        deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(*r.timeout));
    }
    std::uint64_t left = r.count;  // changes still to print

    Snapshot snap = client.snapshot();
    std::vector<std::optional<std::string>> last;
    for (const std::string& key : r.keys) {
        last.push_back(snap.get(key, ns));
    }
    std::uint64_t revision = snap.revision();
    err << "yuxi-configctl: watching " << r.keys.size() << " " << namespace_name(ns)
        << " key(s) of segment '" << client.name() << "' from revision " << revision << '\n'
        << std::flush;

    bool changed = false;
    while (left > 0) {
        // Without a deadline, wake up now and then anyway: wait_for_change takes a duration.
        std::chrono::nanoseconds wait = std::chrono::hours(1);
        if (deadline) {
            const auto now = Clock::now();
            if (now >= *deadline) {
                break;
            }
            wait = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now);
        }
        if (!client.wait_for_change(revision, wait)) {
            continue;
        }
        snap = client.snapshot();
        revision = snap.revision();
        for (std::size_t i = 0; i < r.keys.size(); ++i) {
            const std::string& key = r.keys[i];
            std::optional<std::string> now = snap.get(key, ns);
            if (now == last[i]) {
                continue;
            }
            changed = true;
            if (r.json) {
                out << "{\"revision\":" << revision
                    << ",\"namespace\":" << quote(namespace_name(ns)) << ",\"key\":" << quote(key)
                    << ",\"value\":" << (now ? embeddable(*now, err, key) : "null")
                    << ",\"deleted\":" << (now ? "false" : "true") << "}\n";
            } else {
                out << revision << ' ' << key << ' '
                    << (!now    ? std::string("(deleted)")
                        : r.raw ? unquoted(*now)
                                : *now)
                    << '\n';
            }
            last[i] = std::move(now);
            if (--left == 0) {
                break;
            }
        }
        out << std::flush;
    }
    return changed ? Exit::ok : Exit::not_found;
}

std::string seconds_text(std::chrono::nanoseconds d) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(3) << std::chrono::duration<double>(d).count() << " s";
    return s.str();
}

Exit status(const Client& client, const StatusRequest& r, std::ostream& out) {
    const auto max_age = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(r.max_age));
    const Health h = client.health();
    const bool fresh = h.fresh(max_age);
    const bool healthy = fresh && h.source_state == SourceState::ok;
    const auto ms = [](std::chrono::nanoseconds d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    if (r.json) {
        out << "{\"segment\":" << quote(client.name()) << ",\"revision\":" << h.revision
            << ",\"heartbeat_age_ms\":" << ms(h.heartbeat_age)
            << ",\"writer_alive\":" << (h.writer_alive ? "true" : "false")
            << ",\"writer_pid\":" << h.writer_pid
            << ",\"source_state\":" << quote(source_state_name(h.source_state))
            << ",\"source_state_age_ms\":" << ms(h.source_state_age) << ",\"entries\":" << h.entries
            << ",\"segment_bytes\":" << h.segment_bytes << ",\"arena_used\":" << h.arena_used
            << ",\"retired\":" << (h.retired ? "true" : "false")
            << ",\"fresh\":" << (fresh ? "true" : "false")
            << ",\"healthy\":" << (healthy ? "true" : "false") << "}\n";
    } else {
        const auto row = [&](std::string_view name) -> std::ostream& {
            return out << std::left << std::setw(16) << name;
        };
        row("segment") << client.name() << '\n';
        row("revision") << h.revision << '\n';
        row("heartbeat age") << seconds_text(h.heartbeat_age) << (fresh ? "" : " (not fresh)")
                             << '\n';
        row("writer alive") << (h.writer_alive ? "yes" : "no") << " (pid " << h.writer_pid << ")\n";
        row("source state") << source_state_name(h.source_state) << " (for "
                            << seconds_text(h.source_state_age) << ")\n";
        row("entries") << h.entries << '\n';
        row("segment bytes") << h.segment_bytes << '\n';
        row("arena used") << h.arena_used << '\n';
        if (h.retired) {
            row("retired") << "yes (replaced; the new segment could not be mapped yet)\n";
        }
        row("healthy") << (healthy ? "yes" : "no") << '\n';
    }
    return r.probe && !healthy ? Exit::not_found : Exit::ok;
}

}  // namespace

Exit run(const GetRequest& r, Io io) {
    return get(Client::open(r.segment), r, io.out, io.err);
}
Exit run(const ListRequest& r, Io io) {
    return list(Client::open(r.segment), r, io.out, io.err);
}
Exit run(const DumpRequest& r, Io io) {
    return dump(Client::open(r.segment), r, io.out, io.err);
}
Exit run(const WatchRequest& r, Io io) {
    return watch(Client::open(r.segment), r, io.out, io.err);
}
Exit run(const StatusRequest& r, Io io) {
    return status(Client::open(r.segment), r, io.out);
}

}  // namespace yuxi::config::cli
