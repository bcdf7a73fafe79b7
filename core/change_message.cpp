// Encoding and decoding the relay's Redis documents.
#include "core/change_message.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/json_document.hpp"
#include "core/redis_keys.hpp"
#include "core/redis_reply.hpp"
#include "yuxi/config/detail/hash.hpp"

namespace yuxi::config {
namespace {

using nlohmann::json;

// Documents are flat: the deepest is an entry object inside the entries array.
constexpr JsonLimits limits_for(std::size_t max_bytes) {
    return JsonLimits{max_bytes, 8};
}

std::string_view ns_text(Namespace ns) {
    return ns == Namespace::config ? "config" : "metadata";
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

// One entry. A snapshot entry (`with_op` false) must carry a value.
Decoded<Change> entry_from(const json& e, std::size_t index, bool with_op) {
    Fields f(e, "entry " + std::to_string(index));
    Change c;
    const auto ns = f.one_of("ns", {"config", "metadata"});
    const auto key = f.text("key", layout::kMaxKeyLen);
    const auto op = with_op ? f.one_of("op", {"U", "D"}) : std::optional<std::string_view>("U");
    if (!f.ok()) {
        return refuse(f.error());
    }
    c.ns = *ns == "config" ? Namespace::config : Namespace::metadata;
    c.key = std::string(*key);
    if (*op == "U") {
        const auto value = f.text("value", kMaxDocumentValueBytes);
        c.category = std::string(f.text_or("category", "", layout::kMaxCategoryLen));
        if (!f.ok()) {
            return refuse(f.error());
        }
        c.value = std::string(*value);
    }
    return c;
}

// The document as an object of our version, or why not.
Decoded<json> parse_ours(std::string_view text, std::size_t max_bytes) {
    auto doc = parse_json(text, limits_for(max_bytes));
    if (!doc) {
        return doc;
    }
    Fields f(*doc, "document");
    const auto v = f.u64("v");
    if (!f.ok()) {
        return refuse(f.error());
    }
    if (*v != static_cast<std::uint64_t>(kMessageVersion)) {
        return refuse("version " + std::to_string(*v) + ", this agent reads version " +
                      std::to_string(kMessageVersion));
    }
    return doc;
}

Decoded<std::vector<Change>> entries_from(const json& list, bool with_op) {
    std::vector<Change> out;
    out.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
        auto c = entry_from(list[i], i, with_op);
        if (!c) {
            return refuse(c.reason());
        }
        out.push_back(std::move(*c));
    }
    return out;
}

// One [id, [field, value, ...]] element of an XRANGE reply.
StreamEntry stream_entry(const redisReply* e, const KeyRing* keys) {
    StreamEntry out;
    if (e == nullptr || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0] == nullptr || e->element[0]->type != REDIS_REPLY_STRING) {
        out.batch = Decoded<Batch>::refused("a stream entry is not [id, fields]");
        return out;
    }
    auto id = decode_stream_id(reply_text(e->element[0]));
    if (!id) {
        out.batch = Decoded<Batch>::refused(id.reason());
        return out;
    }
    out.id_revision = *id;
    const redisReply* fields = e->element[1];
    if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY || fields->elements % 2 != 0) {
        out.batch = Decoded<Batch>::refused("the entry's fields are not name/value pairs");
        return out;
    }
    const redisReply* doc = nullptr;
    for (std::size_t i = 0; i < fields->elements; i += 2) {
        const redisReply* name = fields->element[i];
        if (name == nullptr || name->type != REDIS_REPLY_STRING ||
            reply_text(name) != kLogStreamField || doc != nullptr) {
            out.batch = Decoded<Batch>::refused("the entry has fields other than one \"d\"");
            return out;
        }
        doc = fields->element[i + 1];
    }
    if (doc == nullptr || doc->type != REDIS_REPLY_STRING) {
        out.batch = Decoded<Batch>::refused("the entry has no \"d\" text");
        return out;
    }
    const auto document = open_document(reply_text(doc), keys);
    if (!document) {
        out.batch = Decoded<Batch>::refused(document.reason());
        out.bad_signature = true;
        return out;
    }
    out.batch = decode_batch(*document, kMaxStreamEntryBytes);
    if (out.batch && out.batch->revision != out.id_revision) {
        out.batch = Decoded<Batch>::refused("the entry's ID says revision " +
                                            std::to_string(out.id_revision) + ", its document " +
                                            std::to_string(out.batch->revision));
    }
    return out;
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

Decoded<Batch> decode_batch(std::string_view text, std::size_t max_bytes) {
    auto doc = parse_ours(text, max_bytes);
    if (!doc) {
        return refuse(doc.reason());
    }
    Fields f(*doc, "batch");
    Batch b;
    const auto revision = f.u64("revision", 1, kMaxRevision);
    const auto prev = f.u64("prev", 0, kMaxRevision);
    b.commit_ns = f.u64_or("commit_ns", 0);
    b.fence = f.u64_or("fence", 0);
    const json* entries = f.has("entries") ? f.array("entries", kMaxDocumentEntries) : nullptr;
    if (!f.ok()) {
        return refuse(f.error());
    }
    if (*prev >= *revision) {
        return refuse("batch: \"prev\" " + std::to_string(*prev) + " is not below \"revision\" " +
                      std::to_string(*revision));
    }
    b.revision = *revision;
    b.prev = *prev;
    if (entries == nullptr) {
        b.wakeup = true;
        return b;
    }
    auto changes = entries_from(*entries, true);
    if (!changes) {
        return refuse(changes.reason());
    }
    b.entries = std::move(*changes);
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
                      {"created_ms", snapshot.created_ms},
                      {"count", snapshot.entries.size()},
                      {"checksum", snapshot_checksum(snapshot.entries)},
                      {"entries", std::move(entries)}};
    return doc.dump();
}

Decoded<L2Snapshot> decode_snapshot(std::string_view text) {
    auto doc = parse_ours(text, kMaxSnapshotBytes);
    if (!doc) {
        return refuse(doc.reason());
    }
    Fields f(*doc, "snapshot");
    L2Snapshot s;
    const auto revision = f.u64("revision", 1, kMaxRevision);
    s.created_ms = f.u64_or("created_ms", 0);
    const auto count = f.u64("count", 0, kMaxDocumentEntries);
    const auto checksum = f.text("checksum", 16);
    const json* entries = f.array("entries", kMaxDocumentEntries);
    if (!f.ok()) {
        return refuse(f.error());
    }
    s.revision = *revision;
    auto changes = entries_from(*entries, false);
    if (!changes) {
        return refuse(changes.reason());
    }
    s.entries = std::move(*changes);
    if (*count != s.entries.size() || *checksum != snapshot_checksum(s.entries)) {
        return refuse("the checksum does not match the entries (truncated or altered)");
    }
    return s;
}

Decoded<std::uint64_t> decode_stream_id(std::string_view id) {
    std::uint64_t revision = 0;
    std::uint64_t sequence = 0;
    const char* end = id.data() + id.size();
    const auto [dash, ec] = std::from_chars(id.data(), end, revision);
    if (ec != std::errc() || dash == end || *dash != '-') {
        return refuse("a stream ID is not <revision>-<sequence>");
    }
    const auto [tail, ec2] = std::from_chars(dash + 1, end, sequence);
    if (ec2 != std::errc() || tail != end || revision == 0 || revision > kMaxRevision) {
        return refuse("a stream ID is not <revision>-<sequence>");
    }
    return revision;
}

Decoded<std::string_view> open_document(std::string_view text, const KeyRing* keys) {
    if (keys == nullptr) {
        return text;
    }
    return keys->verify(text);
}

Decoded<std::vector<StreamEntry>> decode_stream_page(const redisReply* reply, const KeyRing* keys) {
    if (reply == nullptr) {
        return refuse("no reply");
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        return refuse("Redis answered an error");
    }
    if (reply->type != REDIS_REPLY_ARRAY) {
        return refuse("the reply is not an array");
    }
    std::vector<StreamEntry> out;
    out.reserve(reply->elements);
    for (std::size_t i = 0; i < reply->elements; ++i) {
        out.push_back(stream_entry(reply->element[i], keys));
    }
    return out;
}

}  // namespace yuxi::config
