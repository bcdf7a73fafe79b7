// The documents the relay writes to Redis (DESIGN.md §4), and their checks.
//
// A batch (pub/sub `yuxi:config:changes` and each entry of the stream `yuxi:config:log`):
//   {"v":1,"revision":R,"prev":P,"commit_ns":T,"fence":F,
//    "entries":[{"ns":"config"|"metadata","key":K,"op":"U"|"D","value":"<JSON text>",
//                "category":C}, ...]}
// A follower at revision P applies it as revision R. Values travel as the JSON text the
// segment holds (a string), not as parsed JSON, so every agent publishes the same bytes
// as PostgreSQL's jsonb::text, whatever the JSON library would reformat. A wake-up has no
// "entries": it says only that revision R exists (a resync, or a batch too large for
// pub/sub); the follower then catches up from the stream or the snapshot.
//
// The L2 snapshot (`yuxi:config:snapshot`): the whole entry set at one revision,
//   {"v":1,"revision":R,"count":N,"checksum":"<16 hex>","entries":[{ns,key,value,category}]}
// with a checksum over the entries, so a truncated or tampered document is never loaded.
//
// Decoding never throws: a document that is not ours (another version, garbage on the
// channel) comes back as an error string, and the caller logs it and ignores it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "segment_writer.hpp"

namespace yuxi::config::agent {

inline constexpr int kMessageVersion = 1;

struct Batch {
    std::uint64_t revision = 0;
    std::uint64_t prev = 0;
    std::uint64_t commit_ns = 0;  // CLOCK_REALTIME of the commit, 0 if unknown
    std::uint64_t fence = 0;      // the relay's fencing token: who sent it
    bool wakeup = false;          // no entries: catch up instead of applying
    std::vector<Change> entries;
};

struct L2Snapshot {
    std::uint64_t revision = 0;
    std::vector<Change> entries;  // values present: a snapshot has no deletes
};

// Either the document or why it was refused.
template <class T>
using Decoded = std::variant<T, std::string>;

std::string encode_batch(const Batch& batch);
Decoded<Batch> decode_batch(std::string_view text);

std::string encode_snapshot(const L2Snapshot& snapshot);
Decoded<L2Snapshot> decode_snapshot(std::string_view text);

// The checksum of a snapshot's entries (order matters): 16 lowercase hex digits.
std::string snapshot_checksum(const std::vector<Change>& entries);

}  // namespace yuxi::config::agent
