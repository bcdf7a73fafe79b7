// A rewound history across the fleet (relay.hpp): the relay, told by its PostgreSQL source
// that a failover lost revisions, replaces what Redis holds with the database's truth and
// leaves a record (core/history_record.hpp); followers read the record on every sync and,
// if they had applied a lost revision, reload the snapshot whatever its revision.
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include "agent/fleet/relay.hpp"
#include "core/history_record.hpp"
#include "core/redis_reply.hpp"
#include "lock/redis_connection.hpp"

namespace yuxi::config::agent {

void Relay::set_fence(std::uint64_t fence) {
    if (fence != fence_) {
        spdlog::info("relay fencing token {} (from PostgreSQL)", fence);
    }
    fence_ = fence;
}

void Relay::rewound(std::uint64_t revision) {
    if (role_ != Role::leader) {
        return;  // a follower's own PostgreSQL fallback: the relay handles the fleet
    }
    rewind_due_ = std::max<std::uint64_t>(revision, 1);
    if (primary_ && primary_->up()) {
        publish_rewind();
    }
}

void Relay::publish_rewind() {
    const std::uint64_t revision = rewind_due_;
    rewind_due_ = 0;
    HistoryRecord record;
    record.id = detail::random_token();
    record.revision = revision;
    // Whatever the fleet applied above the revision the database had when the relay last
    // agreed with it is suspect; followers at or below it lose nothing by reloading.
    record.first_lost = 0;
    // In order on one connection: the stream (its IDs must start again below the lost
    // ones), the snapshot, the record, then the wake-up that sends followers to them.
    primary_->command({"DEL", std::string(kLogStream)}, nullptr);
    write_snapshot(std::nullopt);
    primary_->command({"SET", std::string(kHistoryKey), seal(encode_history_record(record))},
                      nullptr);
    history_id_ = record.id;  // ours: no reason to reload if this agent becomes a follower
    history_known_ = true;
    Batch wake;
    wake.revision = revision;
    wake.prev = revision - 1;
    wake.wakeup = true;
    wake.fence = fence_;
    primary_->command({"PUBLISH", std::string(kChangesChannel), seal(encode_batch(wake))}, nullptr);
    spdlog::warn(
        "relay: history rewound; Redis now holds the database's state at revision {} (stream "
        "reset, snapshot replaced, followers told to reload)",
        revision);
}

void Relay::announce_after_outage() {
    const std::uint64_t revision = host_.applied_revision();
    if (revision == 0 || !primary_->up()) {
        return;
    }
    write_snapshot(std::nullopt);
    Batch wake;
    wake.revision = revision;
    wake.prev = revision - 1;
    wake.fence = fence_;
    wake.wakeup = true;
    const std::string doc = seal(encode_batch(wake));
    // Refused if the stream already has this revision (nothing was lost): that is fine.
    primary_->command(
        {"XADD", std::string(kLogStream), "MAXLEN", "~", std::to_string(options_.stream_length),
         std::to_string(revision) + "-0", std::string(kLogStreamField), doc},
        nullptr);
    primary_->command({"PUBLISH", std::string(kChangesChannel), doc}, nullptr);
}

void Relay::learn_history() {
    if (history_known_) {
        return;
    }
    (void)primary_->command({"GET", std::string(kHistoryKey)}, [this](const redisReply* r) {
        if (r == nullptr || history_known_) {
            return;
        }
        if (r->type == REDIS_REPLY_STRING) {
            const auto document = open(reply_text(r), "history", kHistoryKey);
            if (document) {
                if (auto record = decode_history_record(*document)) {
                    history_id_ = record->id;
                }
            }
        }
        history_known_ = true;
    });
}

void Relay::check_history() {
    const bool sent = reader().command({"GET", std::string(kHistoryKey)},
                                       [this](const redisReply* r) { history_reply(r); });
    if (!sent) {
        syncing_ = false;
    }
}

void Relay::history_reply(const redisReply* r) {
    if (r == nullptr || role_ != Role::follower) {
        syncing_ = false;
        return;
    }
    std::optional<HistoryRecord> record;
    if (r->type == REDIS_REPLY_STRING) {
        // A forged or unsigned record would send the fleet to reload: only a signed one counts.
        if (const auto document = open(reply_text(r), "history", kHistoryKey)) {
            auto decoded = decode_history_record(*document);
            if (decoded) {
                record = std::move(*decoded);
            } else {
                note_bad("history", kHistoryKey, decoded.reason());
            }
        }
    }
    const std::uint64_t applied = host_.applied_revision();
    if (record && history_known_ && record->id != history_id_ && applied > 0 &&
        applied >= record->first_lost) {
        spdlog::error(
            "HISTORY REWOUND: the relay found that a database failover lost revisions; this "
            "follower at revision {} reloads the database's state at revision {} (revisions "
            "above it as applied here are gone)",
            applied, record->revision);
        if (metrics_ != nullptr) {
            metrics_->count_history_rewound();
        }
        force_snapshot_ = true;
        announced_ = 0;  // what the old history announced means nothing now
    }
    if (record) {
        history_id_ = record->id;  // a record that vanished (Redis lost it) changes nothing
    }
    history_known_ = true;
    if (force_snapshot_ || applied == 0) {
        fetch_snapshot();
    } else {
        read_stream(applied);
    }
}

}  // namespace yuxi::config::agent
