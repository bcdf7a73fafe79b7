// The relay and its followers (docs/design.md, "Redis"): one agent of the fleet reads PostgreSQL
// and fans its batches out through Redis; the others apply them without a PostgreSQL connection.
//
// Roles.
//   leader    holds the lease `yuxi:config:relay` (the distributed lock's protocol,
//             lock.hpp, on the loop); keeps the LISTEN connection; for each batch it
//             publishes, appends the document to the stream `yuxi:config:log` (ID
//             <revision>-0) and publishes it on `yuxi:config:changes`; writes the L2
//             snapshot `yuxi:config:snapshot` on a timer and after every resync.
//   follower  no lease: no PostgreSQL connection while Redis works. A message whose `prev`
//             is the applied revision is applied at once; anything else (a gap, a wake-up,
//             a reconnect) starts a sync: the stream after the applied revision, else the
//             L2 snapshot and the stream after it, else PostgreSQL. While the subscription
//             is down, the follower polls PostgreSQL (no LISTEN) on the safety-poll timer;
//             while it is up, the same timer reads the stream after the applied revision
//             (pub/sub loses messages across reconnects).
//   direct    the relay is off (--relay off): the agent listens to PostgreSQL itself;
//             Redis serves only the fleet's applied revisions and the L2 boot.
// Every path applies by revision: a batch only on top of its `prev`, a snapshot only if
// newer. Nothing is applied twice or skipped across a hand-over, whoever sent what.
//
// Every agent writes its applied revision to the hash `yuxi:config:agents` each second
// and on every new revision (field: the pod name; value: {"v":1,"revision":R,
// "heartbeat_ms":T,"segment":S,"role":...,"state":...}), and removes it and releases the
// lease on a clean stop; the relay removes agents silent for ten minutes.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/fleet/redis_link.hpp"
#include "agent/fleet/sentinel_watch.hpp"
#include "agent/fleet/signing_keys.hpp"
#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"
#include "core/agent_report.hpp"
#include "core/change_message.hpp"
#include "core/event_loop.hpp"
#include "core/redis_keys.hpp"

namespace yuxi::config::agent {

enum class Role { direct, leader, follower };
std::string_view to_string(Role role) noexcept;

// How the agent should use PostgreSQL now.
enum class PgUse {
    off,     // a follower fed by Redis
    listen,  // the leader, or direct: LISTEN and catch up
    poll,    // a follower without Redis: catch up on the safety-poll timer only
};

// What the relay needs from the database mode that owns it. Calls come from the loop.
class RelayHost {
  public:
    virtual ~RelayHost() = default;
    virtual std::uint64_t applied_revision() const = 0;  // 0: nothing published yet
    virtual bool apply_batch(Batch&& batch) = 0;         // a follower's batch
    virtual bool load_snapshot(L2Snapshot&& snapshot, bool degraded) = 0;
    virtual std::vector<Change> published_entries() const = 0;  // for the L2 snapshot
    virtual void use_postgres(PgUse use) = 0;
    virtual void trim_log(std::uint64_t keep) = 0;
    virtual std::string_view state_name() const = 0;  // the segment's source state
    // The values held back (newest first, at most `max`) and how many keys are, for the
    // agents' report.
    virtual std::vector<ValueRejection> rejected_values(std::size_t /*max*/) const { return {}; }
    virtual std::uint64_t rejected_keys() const { return 0; }
};

class Relay {
  public:
    // Registers nothing yet; `base` and `host` must outlive this object.
    Relay(const Options& options, event_base* base, RelayHost& host);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    // Connects to Redis and starts the timers. A relay-enabled agent starts as a follower
    // and competes for the lease; a direct one tells the host to listen at once.
    void start();
    // Releases the lease and removes this agent from the hash (a short blocking call:
    // the loop has stopped), then closes the links.
    void stop() noexcept;

    // The host published a batch from PostgreSQL (its own source): fan it out if leader.
    void published(Batch batch);
    // The host published a PostgreSQL snapshot at `revision` over `prev`.
    void resynced(std::uint64_t revision, std::uint64_t prev);
    // The host's PostgreSQL source found the history rewound by a failover and published
    // the database's snapshot at `revision`: the relay replaces the stream and the L2
    // snapshot and tells followers to reload whatever their revision (relay_history.cpp).
    void rewound(std::uint64_t revision);
    // A fencing token drawn from PostgreSQL for this relay's lease: batches carry it.
    void set_fence(std::uint64_t fence);
    // The host published a new revision, by any path: report it in yuxi:config:agents
    // soon (coalesced), so that `set --wait-all` returns without waiting for a heartbeat.
    void revision_changed();
    // The host's PostgreSQL source caught up (a polling follower can let it go).
    void postgres_caught_up();
    // Loads the L2 snapshot for an agent that cannot reach PostgreSQL at start.
    void boot_from_l2();

    // Where to report leadership, L2 loads and Redis's health; null reports nothing.
    void set_metrics(Metrics* metrics) noexcept { metrics_ = metrics; }

    bool leader() const noexcept { return role_ == Role::leader; }
    // The Redis server the relay writes to ("host:port"), for /readyz and the logs; with
    // Sentinel, the primary they named last (empty before the first answer).
    std::string redis_serving() const;
    // Redis Sentinel's view, when configured (null otherwise).
    const SentinelWatch* sentinel() const noexcept { return sentinel_.get(); }
    // A follower that is subscribed and in sync with what it was told.
    bool follower_current() const noexcept;

  private:
    static void on_lease_timer(evutil_socket_t, short, void* self);
    static void on_heartbeat_timer(evutil_socket_t, short, void* self);
    static void on_snapshot_timer(evutil_socket_t, short, void* self);
    static void on_poll_timer(evutil_socket_t, short, void* self);

    RedisLink& reader() noexcept;
    // relay_sentinel.cpp: with Sentinel, the links start at the first answer and follow it.
    bool start_sentinel();
    void sentinel_primary(const HostPort& primary);
    void primary_up();
    void primary_down();
    // The subscription and the reading link both work: follow Redis (again).
    void redis_link_up();
    void subscriber_down();
    void try_acquire();
    void renew();
    void become_leader(std::uint64_t fence);
    void become_follower(std::string_view why);
    void on_message(std::string_view text);
    void sync();
    void read_stream(std::uint64_t after);
    void stream_page(const redisReply* reply);
    void fetch_snapshot();
    void snapshot_reply(const redisReply* reply, bool for_boot);
    void finish_sync();
    // relay_history.cpp: the rewind record, written by the relay, checked by followers.
    void publish_rewind();
    // After a Redis outage or failover: the snapshot, and a wake-up at the applied
    // revision in the stream and on pub/sub, so that a follower that missed batches (and
    // one that subscribes only later) is sent to the snapshot.
    void announce_after_outage();
    void check_history();
    // The record as it is when this agent first reaches Redis, whatever its role, so that
    // only a rewind after that one reloads it (a leader that becomes a follower too).
    void learn_history();
    void history_reply(const redisReply* reply);
    void fall_back_to_postgres(std::string_view why);
    void write_snapshot(std::optional<Batch> then_publish);
    void heartbeat();
    void prune_agents();
    // A document from Redis refused: counted and logged (sparingly) by `source`.
    void note_bad(std::string_view source, std::string_view where, std::string_view why);
    void count_snapshot_load();
    // Documents out: signed with the current key (as they are, with --insecure-redis).
    std::string seal(const std::string& document) const;
    // Documents in: the verified document, or a refusal already counted under `source`.
    std::optional<std::string_view> open(std::string_view text, std::string_view source,
                                         std::string_view where);
    // The L2 snapshot may be loaded: not older than --snapshot-max-age, not from the future.
    bool fresh_enough(const L2Snapshot& snapshot, std::string_view source);
    // A verified batch's fence: never below one already seen (a replay of an old relay's).
    bool fence_ok(const Batch& batch, std::string_view source);
    const KeyRing* ring() const noexcept { return keys_ ? &keys_->ring() : nullptr; }

    Options options_;
    event_base* base_;
    RelayHost& host_;
    std::unique_ptr<RedisLink> primary_;
    std::unique_ptr<RedisLink> subscriber_;
    std::unique_ptr<RedisLink> replica_;  // null: followers read the primary
    std::unique_ptr<SentinelWatch> sentinel_;
    bool links_started_ = false;
    EventPtr lease_timer_;
    EventPtr heartbeat_timer_;
    EventPtr snapshot_timer_;
    EventPtr poll_timer_;
    EventPtr report_event_;  // revision_changed()'s coalesced heartbeat

    Role role_ = Role::follower;
    std::string token_;  // the lease's random token while leader
    std::uint64_t fence_ = 0;
    bool lease_in_flight_ = false;
    bool snapshot_due_ = false;  // write the snapshot once the renewal confirms the lease
    bool syncing_ = false;
    bool sync_again_ = false;
    bool polling_ = false;          // PgUse::poll requested while following
    std::uint64_t announced_ = 0;   // highest revision a message or the stream announced
    std::uint64_t rewind_due_ = 0;  // a rewind to publish once Redis answers (its revision)
    bool history_known_ = false;    // a follower has read yuxi:config:history once
    std::string history_id_;        // the rewind record last seen ("" none)
    bool force_snapshot_ = false;   // load the L2 snapshot even if not newer
    Metrics* metrics_ = nullptr;
    std::unique_ptr<SigningKeys> keys_;  // null: --insecure-redis
    std::uint64_t max_fence_ = 0;        // the highest fence of a verified batch
    unsigned beats_ = 0;                 // heartbeats, for the insecure mode's reminder
};

}  // namespace yuxi::config::agent
