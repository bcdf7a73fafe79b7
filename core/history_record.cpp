// Encoding and decoding the rewind record (history_record.hpp).
#include "core/history_record.hpp"

#include <nlohmann/json.hpp>

#include "core/json_document.hpp"

namespace yuxi::config {

std::string encode_history_record(const HistoryRecord& record) {
    const nlohmann::json doc = {{"v", 1},
                                {"id", record.id},
                                {"revision", record.revision},
                                {"first_lost", record.first_lost}};
    return doc.dump();
}

Decoded<HistoryRecord> decode_history_record(std::string_view text) {
    auto doc = parse_json(text, {kMaxHistoryRecordBytes, 2});
    if (!doc) {
        return refuse(doc.reason());
    }
    Fields f(*doc, "history record");
    (void)f.u64("v", 1, 1);
    const auto id = f.text("id", 64);
    const auto revision = f.u64("revision", 0, (1ULL << 63) - 1);
    const auto first_lost = f.u64("first_lost", 0, (1ULL << 63) - 1);
    if (!f.ok()) {
        return refuse(f.error());
    }
    for (const char c : *id) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        if (!hex) {
            return refuse("history record: \"id\" is not lowercase hex");
        }
    }
    return HistoryRecord{std::string(*id), *revision, *first_lost};
}

}  // namespace yuxi::config
