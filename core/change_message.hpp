// The documents the relay writes to Redis (docs/design.md, "Redis"), and their decoders.
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
// with a checksum over the entries, so a truncated or altered document is never loaded.
//
// Anyone who can write to the Redis can write these keys: decoding is total (a document
// or the reason it is refused, never an exception), bounded (documents over the size
// limits are refused before parsing, nesting is limited) and strict (every field of the
// right type and range; an unknown version is refused). Whether a value is valid JSON is
// checked where every source's changes meet, before the segment (agent/admission).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/change.hpp"
#include "core/decoded.hpp"
#include "core/signing.hpp"

struct redisReply;

namespace yuxi::config {

inline constexpr int kMessageVersion = 1;

// What the relay sends on pub/sub at most; larger batches go out as wake-ups, and a
// follower refuses larger messages unread.
inline constexpr std::size_t kMaxMessageBytes = 256 * 1024;
// A stream entry holds the whole batch, so it may be as large as a value allows.
inline constexpr std::size_t kMaxStreamEntryBytes = 80ULL << 20;
inline constexpr std::size_t kMaxSnapshotBytes = 512ULL << 20;
// Values as the segment takes them by default (--max-value-bytes), keys and categories
// as the layout allows.
inline constexpr std::size_t kMaxDocumentValueBytes = 64ULL << 20;
inline constexpr std::size_t kMaxDocumentEntries = 4'000'000;
// Revisions are PostgreSQL bigints.
inline constexpr std::uint64_t kMaxRevision = (1ULL << 63) - 1;

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
    std::uint64_t created_ms = 0;  // CLOCK_REALTIME when the relay wrote it; 0 if unknown
    std::vector<Change> entries;   // values present: a snapshot has no deletes
};

std::string encode_batch(const Batch& batch);
// `max_bytes`: kMaxMessageBytes for pub/sub, kMaxStreamEntryBytes for the stream.
Decoded<Batch> decode_batch(std::string_view text, std::size_t max_bytes = kMaxStreamEntryBytes);

std::string encode_snapshot(const L2Snapshot& snapshot);
Decoded<L2Snapshot> decode_snapshot(std::string_view text);

// The checksum of a snapshot's entries (order matters): 16 lowercase hex digits.
std::string snapshot_checksum(const std::vector<Change>& entries);

// One entry of an XRANGE/XREAD reply of the stream: its ID's revision and the batch it
// holds, or why it is refused (and its revision, when the ID at least was readable, so
// that a follower can step past it).
struct StreamEntry {
    std::uint64_t id_revision = 0;  // 0: the ID itself was unreadable
    Decoded<Batch> batch = Decoded<Batch>::refused("empty");
    bool bad_signature = false;  // refused because its envelope did not verify
};

// The entries of an XRANGE reply, in order; an empty vector and a reason if the reply
// as a whole is not one (an error, nil, a wrong shape). With `keys`, each entry's
// document is verified (core/signing.hpp) before it is decoded.
Decoded<std::vector<StreamEntry>> decode_stream_page(const redisReply* reply,
                                                     const KeyRing* keys = nullptr);

// The document inside `text`: verified with `keys`, or `text` itself when `keys` is null
// (a fleet that runs unsigned, --insecure-redis).
Decoded<std::string_view> open_document(std::string_view text, const KeyRing* keys);

// The revision of a stream ID "<revision>-<sequence>", or why not.
Decoded<std::uint64_t> decode_stream_id(std::string_view id);

}  // namespace yuxi::config
