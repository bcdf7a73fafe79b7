// The relay's followers: applying batches by revision, and the sync that fills a gap from
// the stream, the L2 snapshot, or PostgreSQL (relay.hpp has the protocol).
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/fleet/relay.hpp"
#include "agent/ops/rejections.hpp"
#include "core/redis_reply.hpp"

namespace yuxi::config::agent {
namespace {

constexpr std::size_t kStreamPage = 500;

}  // namespace

void Relay::on_message(std::string_view text) {
    if (role_ != Role::follower) {
        return;
    }
    if (text.size() > kMaxMessageBytes + kMaxEnvelopeBytes) {
        note_bad("pubsub", kChangesChannel, "larger than any message a relay sends");
        return;
    }
    const auto document = open(text, "pubsub", kChangesChannel);
    if (!document) {
        return;
    }
    auto decoded = decode_batch(*document, kMaxMessageBytes);
    if (!decoded) {
        note_bad("pubsub", kChangesChannel, decoded.reason());
        return;
    }
    Batch& b = *decoded;
    if (!fence_ok(b, "pubsub")) {
        return;
    }
    announced_ = std::max(announced_, b.revision);
    const std::uint64_t applied = host_.applied_revision();
    if (syncing_ || polling_) {
        sync_again_ = true;
        return;
    }
    if (b.revision <= applied) {
        // Already have it (a second relay during a hand-over), or a relay that rewound
        // its history: the sync reads the rewind record and tells which.
        if (b.wakeup) {
            sync();
        }
        return;
    }
    if (!b.wakeup && b.prev == applied && applied > 0) {
        if (host_.apply_batch(std::move(b))) {
        }
        return;
    }
    sync();
}

void Relay::sync() {
    if (role_ != Role::follower || polling_) {
        return;
    }
    if (syncing_) {
        sync_again_ = true;
        return;
    }
    if (!subscriber_ || !subscriber_->up() || !reader().up()) {
        return;  // their on_up syncs; the lease timer falls back if Redis stays away
    }
    syncing_ = true;
    sync_again_ = false;
    check_history();  // then the snapshot or the stream
}

void Relay::read_stream(std::uint64_t after) {
    const bool sent =
        reader().command({"XRANGE", std::string(kLogStream), std::to_string(after + 1) + "-0", "+",
                          "COUNT", std::to_string(kStreamPage)},
                         [this](const redisReply* r) { stream_page(r); });
    if (!sent) {
        syncing_ = false;
    }
}

void Relay::stream_page(const redisReply* r) {
    if (role_ != Role::follower) {
        syncing_ = false;  // became the relay meanwhile: PostgreSQL is the source now
        return;
    }
    auto page = decode_stream_page(r, ring());
    if (!page) {
        if (r != nullptr) {
            note_bad("stream", kLogStream, page.reason());
        }
        syncing_ = false;
        return;
    }
    std::uint64_t last_id = 0;
    for (StreamEntry& e : *page) {
        last_id = std::max(last_id, e.id_revision);
        if (!e.batch) {
            // Refused: a gap to the next entry, which the prev check below turns into a
            // snapshot or PostgreSQL sync, as for any entry the stream lost.
            if (e.bad_signature) {
                reject_document("stream", "signature",
                                std::string(kLogStream) + ": " + e.batch.reason());
            } else {
                note_bad("stream", kLogStream, e.batch.reason());
            }
            continue;
        }
        Batch& b = *e.batch;
        if (!fence_ok(b, "stream")) {
            continue;
        }
        announced_ = std::max(announced_, b.revision);
        const std::uint64_t applied = host_.applied_revision();
        if (b.revision <= applied) {
            continue;
        }
        if (b.prev != applied || b.wakeup) {
            fetch_snapshot();  // a gap: trimmed, or a resync the stream cannot replay
            return;
        }
        if (!host_.apply_batch(std::move(b))) {
            syncing_ = false;
            return;
        }
    }
    if (page->size() == kStreamPage && last_id > 0) {
        read_stream(last_id);
        return;
    }
    if (host_.applied_revision() < announced_) {
        fetch_snapshot();  // announced but not in the stream: a resync
        return;
    }
    finish_sync();
}

void Relay::fetch_snapshot() {
    const bool sent = reader().command({"GET", std::string(kSnapshotKey)},
                                       [this](const redisReply* r) { snapshot_reply(r, false); });
    if (!sent) {
        syncing_ = false;
    }
}

void Relay::snapshot_reply(const redisReply* r, bool for_boot) {
    if (r == nullptr) {
        syncing_ = false;
        return;
    }
    if (!for_boot && role_ != Role::follower) {
        syncing_ = false;
        return;
    }
    const std::uint64_t applied = host_.applied_revision();
    std::optional<L2Snapshot> snapshot;
    if (r->type == REDIS_REPLY_STRING) {
        const auto document = open(reply_text(r), "snapshot", kSnapshotKey);
        auto decoded =
            document ? decode_snapshot(*document) : Decoded<L2Snapshot>::refused("not verified");
        if (document && !decoded) {
            note_bad("snapshot", kSnapshotKey, decoded.reason());
        } else if (decoded && fresh_enough(*decoded, "snapshot")) {
            snapshot = std::move(*decoded);
        }
    } else if (r->type != REDIS_REPLY_NIL) {
        note_bad("snapshot", kSnapshotKey, "the reply is not a string");
    }
    if (for_boot) {
        if (snapshot && applied == 0) {
            const std::uint64_t revision = snapshot->revision;
            if (host_.load_snapshot(std::move(*snapshot), true)) {
                count_snapshot_load();
                spdlog::warn(
                    "booted from the L2 snapshot at revision {}: degraded until "
                    "PostgreSQL answers",
                    revision);
            }
        } else if (!snapshot) {
            spdlog::warn(
                "PostgreSQL is not reachable and there is no usable L2 snapshot: "
                "not ready until PostgreSQL answers");
        }
        return;
    }
    if (!snapshot || (snapshot->revision <= applied && applied < announced_)) {
        fall_back_to_postgres(snapshot ? "the L2 snapshot is older than the fleet"
                                       : "no usable L2 snapshot");
        return;
    }
    if (force_snapshot_) {
        force_snapshot_ = false;
        const std::uint64_t revision = snapshot->revision;
        if (!host_.load_snapshot(std::move(*snapshot), false)) {
            syncing_ = false;
            return;
        }
        count_snapshot_load();
        spdlog::warn("follower replaced its history with the L2 snapshot at revision {}", revision);
    } else if (snapshot->revision > applied) {
        const std::uint64_t revision = snapshot->revision;
        if (!host_.load_snapshot(std::move(*snapshot), false)) {
            syncing_ = false;
            return;
        }
        count_snapshot_load();
        spdlog::info("follower loaded the L2 snapshot at revision {}", revision);
    }
    read_stream(host_.applied_revision());
}

void Relay::finish_sync() {
    syncing_ = false;
    if (sync_again_) {
        sync();
    }
}

void Relay::fall_back_to_postgres(std::string_view why) {
    syncing_ = false;
    if (role_ != Role::follower || polling_) {
        return;
    }
    spdlog::warn("follower: {}; reading PostgreSQL (polling, no LISTEN) until Redis serves", why);
    polling_ = true;
    host_.use_postgres(PgUse::poll);
}

void Relay::boot_from_l2() {
    if (!reader().up() || host_.applied_revision() != 0) {
        return;
    }
    (void)reader().command({"GET", std::string(kSnapshotKey)},
                           [this](const redisReply* r) { snapshot_reply(r, true); });
}

}  // namespace yuxi::config::agent
