// Encoding and checking the relay's Redis documents.
#include "change_message.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>

#include "yuxi/config/detail/hash.hpp"

namespace yuxi::config::agent {
namespace {

using nlohmann::json;

std::string_view ns_text(Namespace ns) {
    return ns == Namespace::config ? "config" : "metadata";
}

std::optional<Namespace> ns_from(const json& j) {
    if (!j.is_string()) {
        return std::nullopt;
    }
    const auto& s = j.get_ref<const std::string&>();
    if (s == "config") {
        return Namespace::config;
    }
    if (s == "metadata") {
        return Namespace::metadata;
    }
    return std::nullopt;
}

json entry_json(const Change& c, bool with_op) {
    json e = {{"ns", ns_text(c.ns)}, {"key", c.key}};
    if (with_op) {
        e["op"] = c.value ? "U" : "D";
    }
    if (c.value) {
        e["value"] = *c.value;
    }
    if (!c.category.empty()) {
        e["category"] = c.category;
    }
    return e;
}

// One entry, or why not. A snapshot entry (`with_op` false) must carry a value.
std::variant<Change, std::string> entry_from(const json& e, bool with_op) {
    if (!e.is_object()) {
        return std::string("an entry is not an object");
    }
    Change c;
    const auto ns = e.contains("ns") ? ns_from(e["ns"]) : std::nullopt;
    if (!ns) {
        return std::string("an entry has no valid \"ns\"");
    }
    c.ns = *ns;
    if (!e.contains("key") || !e["key"].is_string() ||
        e["key"].get_ref<const std::string&>().empty()) {
        return std::string("an entry has no \"key\"");
    }
    c.key = e["key"].get<std::string>();
    bool remove = false;
    if (with_op) {
        const auto op = e.value("op", std::string());
        if (op != "U" && op != "D") {
            return "entry '" + c.key + "' has no valid \"op\"";
        }
        remove = op == "D";
    }
    if (!remove) {
        if (!e.contains("value") || !e["value"].is_string()) {
            return "entry '" + c.key + "' has no \"value\" text";
        }
        c.value = e["value"].get<std::string>();
    }
    if (e.contains("category")) {
        if (!e["category"].is_string()) {
            return "entry '" + c.key + "' has a \"category\" that is not text";
        }
        c.category = e["category"].get<std::string>();
    }
    return c;
}

std::optional<std::uint64_t> revision_field(const json& doc, const char* name) {
    if (!doc.contains(name) || !doc[name].is_number_unsigned()) {
        return std::nullopt;
    }
    return doc[name].get<std::uint64_t>();
}

// The document as an object of our version, or why not.
std::variant<json, std::string> parse_ours(std::string_view text) {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return std::string("not a JSON object");
    }
    if (!doc.contains("v") || !doc["v"].is_number_integer()) {
        return std::string("no version \"v\"");
    }
    if (doc["v"].get<long long>() != kMessageVersion) {
        return "version " + doc["v"].dump() + ", this agent reads version " +
               std::to_string(kMessageVersion);
    }
    return doc;
}

}  // namespace

std::string encode_batch(const Batch& batch) {
    json doc = {{"v", kMessageVersion},
                {"revision", batch.revision},
                {"prev", batch.prev},
                {"commit_ns", batch.commit_ns},
                {"fence", batch.fence}};
    if (!batch.wakeup) {
        json entries = json::array();
        for (const Change& c : batch.entries) {
            entries.push_back(entry_json(c, true));
        }
        doc["entries"] = std::move(entries);
    }
    return doc.dump();
}

Decoded<Batch> decode_batch(std::string_view text) {
    auto parsed = parse_ours(text);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        return *why;
    }
    const json& doc = std::get<json>(parsed);
    Batch b;
    const auto revision = revision_field(doc, "revision");
    const auto prev = revision_field(doc, "prev");
    if (!revision || !prev || *prev >= *revision) {
        return std::string("no valid \"revision\" and \"prev\"");
    }
    b.revision = *revision;
    b.prev = *prev;
    b.commit_ns = revision_field(doc, "commit_ns").value_or(0);
    b.fence = revision_field(doc, "fence").value_or(0);
    if (!doc.contains("entries")) {
        b.wakeup = true;
        return b;
    }
    if (!doc["entries"].is_array()) {
        return std::string("\"entries\" is not an array");
    }
    b.entries.reserve(doc["entries"].size());
    for (const json& e : doc["entries"]) {
        auto entry = entry_from(e, true);
        if (auto* why = std::get_if<std::string>(&entry)) {
            return *why;
        }
        b.entries.push_back(std::move(std::get<Change>(entry)));
    }
    return b;
}

std::string snapshot_checksum(const std::vector<Change>& entries) {
    std::uint64_t h = 0x79757869;  // any fixed seed
    for (const Change& c : entries) {
        const char ns = static_cast<char>(c.ns);
        h = detail::hash_bytes(&ns, 1, h);
        h = detail::hash_bytes(c.key.data(), c.key.size(), h);
        const std::string_view v = c.value ? std::string_view(*c.value) : std::string_view();
        h = detail::hash_bytes(v.data(), v.size(), h ^ c.key.size());
        h = detail::hash_bytes(c.category.data(), c.category.size(), h ^ v.size());
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return hex;
}

std::string encode_snapshot(const L2Snapshot& snapshot) {
    json entries = json::array();
    for (const Change& c : snapshot.entries) {
        entries.push_back(entry_json(c, false));
    }
    const json doc = {{"v", kMessageVersion},
                      {"revision", snapshot.revision},
                      {"count", snapshot.entries.size()},
                      {"checksum", snapshot_checksum(snapshot.entries)},
                      {"entries", std::move(entries)}};
    return doc.dump();
}

Decoded<L2Snapshot> decode_snapshot(std::string_view text) {
    auto parsed = parse_ours(text);
    if (auto* why = std::get_if<std::string>(&parsed)) {
        return *why;
    }
    const json& doc = std::get<json>(parsed);
    L2Snapshot s;
    const auto revision = revision_field(doc, "revision");
    if (!revision || *revision == 0) {
        return std::string("no valid \"revision\"");
    }
    s.revision = *revision;
    if (!doc.contains("entries") || !doc["entries"].is_array() || !doc.contains("checksum") ||
        !doc["checksum"].is_string()) {
        return std::string("no \"entries\" or \"checksum\"");
    }
    s.entries.reserve(doc["entries"].size());
    for (const json& e : doc["entries"]) {
        auto entry = entry_from(e, false);
        if (auto* why = std::get_if<std::string>(&entry)) {
            return *why;
        }
        s.entries.push_back(std::move(std::get<Change>(entry)));
    }
    if (revision_field(doc, "count").value_or(s.entries.size() + 1) != s.entries.size() ||
        doc["checksum"].get<std::string>() != snapshot_checksum(s.entries)) {
        return std::string("the checksum does not match the entries (truncated or altered)");
    }
    return s;
}

}  // namespace yuxi::config::agent
