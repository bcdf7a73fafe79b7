// The relay's record of the last rewound history (`yuxi:config:history`):
//   {"v":1,"id":"<32 hex>","revision":S,"first_lost":F}
// written by a relay whose database was found to have lost revisions in a failover
// (revisions from F on, as the fleet had them, are gone; the database is at S). A
// follower that sees a new id and had applied revision F or later resyncs from the L2
// snapshot the relay wrote just before, whatever its revision: the two histories are
// never merged. One type and one decoder for the writer and the readers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/decoded.hpp"

namespace yuxi::config {

inline constexpr std::string_view kHistoryKey = "yuxi:config:history";
inline constexpr std::size_t kMaxHistoryRecordBytes = 1024;

struct HistoryRecord {
    std::string id;  // new for every rewind
    std::uint64_t revision = 0;
    std::uint64_t first_lost = 0;
};

std::string encode_history_record(const HistoryRecord& record);
Decoded<HistoryRecord> decode_history_record(std::string_view text);

}  // namespace yuxi::config
