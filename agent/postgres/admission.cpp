// Database mode's admission of changes: limits, JSON, and the keys' JSON Schemas.
#include "agent/postgres/admission.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/json_document.hpp"
#include "core/text.hpp"

namespace yuxi::config::agent {
namespace {

const char* ns_name(Namespace ns) {
    return ns == Namespace::config ? "config" : "metadata";
}

bool is_schemas(const Change& c) {
    return c.ns == Namespace::metadata && c.key == kValueSchemasKey;
}

}  // namespace

std::string Admission::id(Namespace ns, std::string_view key) {
    std::string out(1, static_cast<char>(ns));
    out += key;
    return out;
}

void Admission::refuse(Namespace ns, const std::string& key, std::uint64_t revision,
                       std::string_view reason, const std::string& why) {
    ++counts_[std::string(reason)];
    spdlog::error(
        "{} key '{}' at revision {} refused: {}; readers keep its last good value, if any",
        ns_name(ns), printable(key), revision, printable(why, 400));
    auto& e = refused_[id(ns, key)];
    if (!e.reported || e.rejection.key.empty()) {
        ++reported_;
    }
    e = {{revision, ns_name(ns), key, why}, true};
}

void Admission::accept(Namespace ns, const std::string& key) {
    if (refused_.empty()) {
        return;
    }
    const auto it = refused_.find(id(ns, key));
    if (it != refused_.end()) {
        reported_ -= it->second.reported ? 1 : 0;
        refused_.erase(it);
    }
}

bool Admission::take_schemas(const Change& c, std::uint64_t revision) {
    if (!c.value) {
        schemas_ = ValueSchemas();
        return true;
    }
    auto compiled = ValueSchemas::from_document(*c.value);
    if (!compiled) {
        refuse(c.ns, c.key, revision, "schema",
               "the value schemas cannot be used: " + compiled.reason());
        return false;
    }
    schemas_ = std::move(*compiled);
    return true;
}

std::vector<Change> Admission::admit(std::vector<Change>&& changes, std::uint64_t revision,
                                     bool snapshot) {
    // Later changes of a key win; keep the first appearance's position.
    std::vector<Change> out;
    out.reserve(changes.size());
    if (changes.size() == 1 || snapshot) {
        out = std::move(changes);
    } else {
        std::unordered_map<std::string, std::size_t> index;
        index.reserve(changes.size());
        for (Change& c : changes) {
            const auto [it, inserted] = index.try_emplace(id(c.ns, c.key), out.size());
            if (inserted) {
                out.push_back(std::move(c));
            } else {
                out[it->second] = std::move(c);
            }
        }
    }
    if (snapshot) {
        refused_.clear();
        reported_ = 0;
    }
    // The schemas first: the batch's other values are checked with the schemas it brings.
    const auto schemas = std::find_if(out.begin(), out.end(), is_schemas);
    bool schemas_refused = false;
    if (schemas != out.end()) {
        schemas_refused = !take_schemas(*schemas, revision);
    } else if (snapshot) {
        schemas_ = ValueSchemas();  // a snapshot without the document has no schemas
    }
    std::size_t kept = 0;
    for (Change& c : out) {
        if (c.value && c.value->size() > max_value_bytes_) {
            refuse(c.ns, c.key, revision, "too_large",
                   "its value of " + std::to_string(c.value->size()) +
                       " bytes exceeds the limit of " + std::to_string(max_value_bytes_) +
                       " (--max-value-bytes)");
            continue;
        }
        // PostgreSQL's jsonb::text is always JSON, but a batch from Redis may say anything:
        // every path checks the same way, so that the relay and its followers agree.
        if (c.value) {
            if (auto why = check_json_text(*c.value, {c.value->size(), kMaxValueDepth})) {
                refuse(c.ns, c.key, revision, "not_json",
                       "its value is not usable JSON (" + *why + ")");
                continue;
            }
        }
        if (is_schemas(c) && schemas_refused) {
            continue;
        }
        if (c.value && !is_schemas(c)) {
            if (const auto v = schemas_.validate_text(c.ns, c.key, *c.value)) {
                refuse(c.ns, c.key, revision, "schema",
                       "its value breaks the schema of '" + v->pattern + "': " + v->message());
                continue;
            }
        }
        accept(c.ns, c.key);
        if (&out[kept] != &c) {
            out[kept] = std::move(c);
        }
        ++kept;
    }
    out.resize(kept);
    return out;
}

void Admission::segment_refused(const std::vector<Rejected>& rejected, std::uint64_t revision) {
    for (const Rejected& r : rejected) {
        refuse(Namespace::config, r.key, revision, "segment",
               "the segment refused it: " + r.reason);
        // The writer names the key without its namespace: hold back both.
        auto& shadow = refused_[id(Namespace::metadata, r.key)];
        if (shadow.rejection.key.empty()) {
            shadow = {{revision, "metadata", r.key, r.reason}, false};
        }
    }
}

std::vector<ValueRejection> Admission::newest(std::size_t max) const {
    std::vector<ValueRejection> out;
    for (const auto& [id, e] : refused_) {
        if (e.reported) {
            out.push_back(e.rejection);
        }
    }
    std::sort(out.begin(), out.end(), [](const ValueRejection& a, const ValueRejection& b) {
        return std::tie(b.revision, a.ns, a.key) < std::tie(a.revision, b.ns, b.key);
    });
    if (out.size() > max) {
        out.resize(max);
    }
    return out;
}

std::uint64_t Admission::total() const noexcept {
    std::uint64_t n = 0;
    for (const auto& [reason, count] : counts_) {
        n += count;
    }
    return n;
}

}  // namespace yuxi::config::agent
