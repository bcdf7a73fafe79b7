// The relay lease, the fan-out of batches, and the followers' sync (relay.hpp).
#include "agent/fleet/relay.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <system_error>

#include "agent/ops/rejections.hpp"
#include "core/agent_report.hpp"
#include "core/event_loop.hpp"
#include "core/redis_reply.hpp"
#include "core/text.hpp"
#include "lock/lock_scripts.hpp"
#include "lock/redis_connection.hpp"
#include "yuxi/config/lock.hpp"

namespace yuxi::config::agent {
namespace {

// Larger batches than kMaxMessageBytes go out on pub/sub as a wake-up: pub/sub copies
// every message to every subscriber's output buffer, the stream holds it once.
constexpr std::chrono::seconds kReportInterval{1};
constexpr std::chrono::seconds kMaxSnapshotInterval{60};
// An agent silent this long is taken off yuxi:config:agents by the relay.
constexpr std::chrono::milliseconds kAgentExpiry{10 * 60 * 1000};

std::uint64_t unix_ms() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

RedisLinkOptions link_options(const Options& o, std::string name, bool replica,
                              std::string channel) {
    RedisLinkOptions l;
    l.name = std::move(name);
    l.host = replica ? o.redis.replica_host : o.redis.host;
    l.port = replica ? o.redis.replica_port : o.redis.port;
    l.username = o.redis.username;
    l.password = o.redis.password;
    l.db = o.redis.db;
    l.subscribe_channel = std::move(channel);
    l.require_primary = !o.redis.sentinels.empty() && l.subscribe_channel.empty() && !replica;
    return l;
}

}  // namespace

std::string_view to_string(Role role) noexcept {
    switch (role) {
        case Role::direct:
            return "direct";
        case Role::leader:
            return "relay";
        case Role::follower:
            return "follower";
    }
    return "?";
}

Relay::Relay(const Options& options, event_base* base, RelayHost& host)
    : options_(options), base_(base), host_(host) {
    role_ = options_.relay_enabled() ? Role::follower : Role::direct;
}

Relay::~Relay() {
    stop();
}

bool Relay::follower_current() const noexcept {
    // Not `!syncing_`: a sync takes a round trip, and readers need not see it as stale.
    return role_ == Role::follower && subscriber_ && subscriber_->up() &&
           host_.applied_revision() > 0;
}

RedisLink& Relay::reader() noexcept {
    return replica_ ? *replica_ : *primary_;
}

void Relay::start() {
    if (options_.signing.configured()) {
        keys_ = std::make_unique<SigningKeys>(options_.signing);
    } else {
        spdlog::warn(
            "--insecure-redis: Redis documents are neither signed nor verified; whoever can "
            "write to this Redis decides what every pod reads (docs/security.md)");
    }
    if (metrics_ != nullptr) {
        metrics_->set_insecure(!keys_);
    }
    const bool use_replica = !options_.redis.replica_host.empty();
    primary_ = std::make_unique<RedisLink>(
        link_options(options_, "redis", false, ""), base_,
        RedisLink::Hooks{[this] { primary_up(); }, [this] { primary_down(); }, nullptr});
    if (use_replica) {
        replica_ = std::make_unique<RedisLink>(
            link_options(options_, "redis-replica", true, ""), base_,
            RedisLink::Hooks{[this] { redis_link_up(); }, nullptr, nullptr});
    }
    if (role_ == Role::follower) {
        subscriber_ = std::make_unique<RedisLink>(
            link_options(options_, "redis-subscriber", use_replica, std::string(kChangesChannel)),
            base_,
            RedisLink::Hooks{[this] { redis_link_up(); }, [this] { subscriber_down(); },
                             [this](std::string_view m) { on_message(m); }});
    }
    lease_timer_.reset(event_new(base_, -1, EV_PERSIST, &Relay::on_lease_timer, this));
    heartbeat_timer_.reset(event_new(base_, -1, EV_PERSIST, &Relay::on_heartbeat_timer, this));
    snapshot_timer_.reset(event_new(base_, -1, EV_PERSIST, &Relay::on_snapshot_timer, this));
    poll_timer_.reset(event_new(base_, -1, EV_PERSIST, &Relay::on_poll_timer, this));
    report_event_.reset(evtimer_new(base_, &Relay::on_heartbeat_timer, this));
    const timeval poll = to_timeval(options_.safety_poll);
    const timeval lease = to_timeval(options_.relay_lease_ttl / 3);
    const timeval beat = to_timeval(kReportInterval);
    const timeval snap = to_timeval(
        std::min<std::chrono::milliseconds>(options_.snapshot_ttl / 3, kMaxSnapshotInterval));
    if (!lease_timer_ || !heartbeat_timer_ || !snapshot_timer_ ||
        event_add(lease_timer_.get(), &lease) != 0 ||
        event_add(heartbeat_timer_.get(), &beat) != 0 ||
        event_add(snapshot_timer_.get(), &snap) != 0 || !poll_timer_ || !report_event_ ||
        event_add(poll_timer_.get(), &poll) != 0) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: relay timers");
    }
    spdlog::info("Redis at {}:{}{}: role {}", options_.redis.host, options_.redis.port,
                 use_replica ? " (followers read the replica " + options_.redis.replica_host + ":" +
                                   std::to_string(options_.redis.replica_port) + ")"
                             : "",
                 role_ == Role::direct ? "direct (relay off)" : "follower until the lease is ours");
    if (role_ == Role::direct) {
        host_.use_postgres(PgUse::listen);
    }
    if (metrics_ != nullptr) {
        metrics_->set_source_up("redis", false);
        if (role_ != Role::direct) {
            metrics_->set_relay_leader(false);
        }
    }
    if (start_sentinel()) {
        return;  // the links start at the Sentinels' first answer
    }
    links_started_ = true;
    primary_->start();
    if (replica_) {
        replica_->start();
    }
    if (subscriber_) {
        subscriber_->start();
    }
}

void Relay::stop() noexcept {
    lease_timer_.reset();
    heartbeat_timer_.reset();
    snapshot_timer_.reset();
    poll_timer_.reset();
    report_event_.reset();
    if (subscriber_) {
        subscriber_->stop();
    }
    if (replica_) {
        replica_->stop();
    }
    if (sentinel_) {
        sentinel_->stop();
    }
    if (primary_) {
        const std::string primary_host = primary_->options().host;
        const std::uint16_t primary_port = primary_->options().port;
        primary_->stop();
        primary_.reset();
        // The loop has stopped: a short blocking goodbye lets another agent take the lease
        // now instead of after its TTL, and takes us off the fleet's list.
        try {
            RedisEndpoint ep;
            ep.host = primary_host;
            ep.port = primary_port;
            ep.username = options_.redis.username;
            ep.password = options_.redis.password;
            ep.db = static_cast<int>(options_.redis.db);
            ep.connect_timeout = std::chrono::milliseconds(500);
            ep.command_timeout = std::chrono::milliseconds(500);
            detail::RedisConnection c(ep);
            if (role_ == Role::leader && !token_.empty()) {
                (void)c.command_integer(
                    {"EVAL", detail::kReleaseScript, "1", kRelayLeaseKey, token_});
                spdlog::info("relay lease released");
            }
            (void)c.command_integer({"HDEL", kAgentsHash, options_.pod_name});
        } catch (const std::exception& e) {
            spdlog::warn("could not say goodbye to Redis: {}", e.what());
        }
    }
    role_ = role_ == Role::direct ? Role::direct : Role::follower;
    token_.clear();
}

void Relay::primary_up() {
    if (metrics_ != nullptr) {
        metrics_->set_source_up("redis", true);
    }
    learn_history();
    heartbeat();
    if (role_ == Role::follower) {
        try_acquire();
        if (!replica_) {
            redis_link_up();
        }
    } else if (role_ == Role::leader) {
        snapshot_due_ = true;
        renew();
        if (rewind_due_ != 0) {
            publish_rewind();
        }
    }
}

void Relay::primary_down() {
    if (metrics_ != nullptr) {
        metrics_->set_source_up("redis", false);
        metrics_->count_reconnect("redis");
        metrics_->count_error("redis");
    }
}

void Relay::redis_link_up() {
    if (role_ != Role::follower || !subscriber_ || !subscriber_->up() || !reader().up()) {
        return;
    }
    if (polling_) {
        // Whatever PostgreSQL gave meanwhile is applied; the sync takes it from there.
        spdlog::info("Redis is back: the follower lets PostgreSQL go");
        polling_ = false;
        host_.use_postgres(PgUse::off);
    }
    sync();
}

void Relay::subscriber_down() {
    if (role_ == Role::follower) {
        fall_back_to_postgres("the Redis subscription is down");
    }
}

void Relay::on_lease_timer(evutil_socket_t, short, void* self) {
    guarded("relay", [&] {
        auto& me = *static_cast<Relay*>(self);
        if (me.role_ == Role::leader) {
            me.renew();
        } else if (me.role_ == Role::follower) {
            me.try_acquire();
            if (!me.subscriber_->up() || !me.reader().up()) {
                // Also at start: an agent that never reaches Redis still serves PostgreSQL.
                me.fall_back_to_postgres("Redis is not reachable");
            }
        }
    });
}

void Relay::try_acquire() {
    if (lease_in_flight_ || !primary_->up()) {
        return;
    }
    std::string token = detail::random_token();
    lease_in_flight_ = primary_->command(
        {"EVAL", std::string(detail::kAcquireScript), "2", std::string(kRelayLeaseKey),
         std::string(kRelayFenceKey), token, std::to_string(options_.relay_lease_ttl.count())},
        [this, token](const redisReply* r) {
            lease_in_flight_ = false;
            if (r == nullptr || r->type != REDIS_REPLY_INTEGER) {
                if (r != nullptr) {
                    spdlog::warn("relay lease: unexpected answer: {}", printable(reply_text(r)));
                }
                return;
            }
            if (r->integer > 0 && role_ == Role::follower) {
                token_ = token;
                become_leader(static_cast<std::uint64_t>(r->integer));
            }
        });
}

void Relay::renew() {
    if (lease_in_flight_ || !primary_->up()) {
        return;  // Redis away: keep serving our own segment; the answer comes on return
    }
    lease_in_flight_ = primary_->command(
        {"EVAL", std::string(detail::kRenewScript), "1", std::string(kRelayLeaseKey), token_,
         std::to_string(options_.relay_lease_ttl.count())},
        [this](const redisReply* r) {
            lease_in_flight_ = false;
            if (r == nullptr || role_ != Role::leader) {
                return;
            }
            if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
                become_follower(r->type == REDIS_REPLY_INTEGER && r->integer < 0
                                    ? "another agent holds it"
                                    : "it expired");
            } else if (snapshot_due_) {
                // Back after an outage and still the relay: Redis may have lost the
                // snapshot and missed batches (a failover), so the followers get a fresh
                // one now, and a wake-up at our revision that sends them to it.
                snapshot_due_ = false;
                announce_after_outage();
            }
        });
}

void Relay::become_leader(std::uint64_t fence) {
    role_ = Role::leader;
    fence_ = fence;
    if (metrics_ != nullptr) {
        metrics_->set_relay_leader(true);
    }
    syncing_ = false;
    spdlog::info(
        "relay lease taken (fencing token {}): this agent listens to PostgreSQL and "
        "publishes to Redis, from revision {}",
        fence, host_.applied_revision());
    if (subscriber_) {
        subscriber_->stop();  // a leader's own batches come from PostgreSQL
    }
    host_.use_postgres(PgUse::listen);
}

void Relay::become_follower(std::string_view why) {
    role_ = Role::follower;
    if (metrics_ != nullptr) {
        metrics_->set_relay_leader(false);
    }
    token_.clear();
    spdlog::warn("relay lease lost ({}): following Redis from revision {}", why,
                 host_.applied_revision());
    polling_ = false;
    host_.use_postgres(PgUse::off);
    if (subscriber_) {
        subscriber_->start();
    }
}

void Relay::published(Batch batch) {
    if (role_ != Role::leader || !primary_->up()) {
        return;
    }
    batch.fence = fence_;
    const std::string doc = seal(encode_batch(batch));
    // The limit applies to what followers receive: the sealed message.
    const std::string message =
        doc.size() <= kMaxMessageBytes
            ? doc
            : seal(encode_batch(
                  Batch{batch.revision, batch.prev, batch.commit_ns, fence_, true, {}}));
    // XADD first, on the same connection: a follower woken by the message finds the
    // batch in the stream (replicas replay both in this order too).
    primary_->command(
        {"XADD", std::string(kLogStream), "MAXLEN", "~", std::to_string(options_.stream_length),
         std::to_string(batch.revision) + "-0", "d", doc},
        [](const redisReply* r) {
            if (r != nullptr && r->type == REDIS_REPLY_ERROR) {
                // A second relay (a hand-over) already added it.
                spdlog::debug("stream: {}", reply_text(r));
            }
        });
    primary_->command({"PUBLISH", std::string(kChangesChannel), message}, nullptr);
}

void Relay::resynced(std::uint64_t revision, std::uint64_t prev) {
    if (role_ != Role::leader || revision <= prev) {
        return;
    }
    // Followers cannot rebuild a resync from the stream: the snapshot goes first, then a
    // wake-up that sends them to it.
    Batch wake;
    wake.revision = revision;
    wake.prev = prev;
    wake.wakeup = true;
    write_snapshot(wake);
}

void Relay::revision_changed() {
    // A zero timeout runs after the callbacks already due: a burst of batches is one HSET.
    if (report_event_ && evtimer_pending(report_event_.get(), nullptr) == 0) {
        const timeval now{0, 0};
        event_add(report_event_.get(), &now);
    }
}

void Relay::postgres_caught_up() {
    if (role_ == Role::follower && polling_ && subscriber_ && subscriber_->up()) {
        spdlog::info("Redis is back: the follower lets PostgreSQL go");
        polling_ = false;
        host_.use_postgres(PgUse::off);
        sync();
    }
}

void Relay::on_poll_timer(evutil_socket_t, short, void* self) {
    guarded("relay", [&] {
        // Pub/sub drops messages while a subscriber reconnects, or while a replica is still
        // syncing: a follower's safety poll is one XRANGE after its revision.
        auto& me = *static_cast<Relay*>(self);
        if (me.role_ == Role::follower) {
            me.sync();
        } else if (me.role_ == Role::leader && me.options_.log_keep > 0) {
            // The relay keeps the PostgreSQL log to its retention, so that no cron job is
            // needed; followers that fall further behind use the stream or the snapshot.
            me.host_.trim_log(me.options_.log_keep);
        }
    });
}

void Relay::on_snapshot_timer(evutil_socket_t, short, void* self) {
    guarded("relay", [&] {
        auto& me = *static_cast<Relay*>(self);
        if (me.role_ == Role::leader) {
            me.write_snapshot(std::nullopt);
            me.prune_agents();
        }
    });
}

void Relay::prune_agents() {
    // Pods come and go under their own names (a rollout replaces every one): without
    // pruning, the hash would keep every pod that ever ran.
    primary_->command({"HGETALL", std::string(kAgentsHash)}, [this](const redisReply* r) {
        if (r == nullptr || r->type != REDIS_REPLY_ARRAY) {
            return;
        }
        const std::uint64_t now = unix_ms();
        std::vector<std::string> gone = {"HDEL", std::string(kAgentsHash)};
        for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
            // A field that is not a report is taken off as well: only agents write here.
            // Verified first: a field that is not a signed report is taken off too.
            const auto document = open_document(reply_text(r->element[i + 1]), ring());
            const auto report = document ? decode_agent_report(*document)
                                         : Decoded<AgentReport>::refused(document.reason());
            const std::uint64_t beat = report ? report->heartbeat_ms : 0;
            if (beat + static_cast<std::uint64_t>(kAgentExpiry.count()) < now &&
                r->element[i] != nullptr && r->element[i]->type == REDIS_REPLY_STRING) {
                gone.emplace_back(reply_text(r->element[i]));
            }
        }
        if (gone.size() > 2) {
            spdlog::info("removed {} agent(s) silent for over {} min from {}", gone.size() - 2,
                         kAgentExpiry.count() / 60000, kAgentsHash);
            primary_->command(std::move(gone), nullptr);
        }
    });
}

void Relay::write_snapshot(std::optional<Batch> then_publish) {
    const std::uint64_t revision = host_.applied_revision();
    if (revision == 0 || !primary_->up()) {
        return;
    }
    L2Snapshot s;
    s.revision = revision;
    s.created_ms = unix_ms();
    s.entries = host_.published_entries();
    const std::string doc = seal(encode_snapshot(s));
    primary_->command({"SET", std::string(kSnapshotKey), doc, "PX",
                       std::to_string(options_.snapshot_ttl.count())},
                      nullptr);
    if (then_publish) {
        then_publish->fence = fence_;
        primary_->command(
            {"PUBLISH", std::string(kChangesChannel), seal(encode_batch(*then_publish))}, nullptr);
    }
    spdlog::debug("L2 snapshot written at revision {} ({} entries, {} bytes)", revision,
                  s.entries.size(), doc.size());
}

void Relay::on_heartbeat_timer(evutil_socket_t, short, void* self) {
    guarded("relay", [&] {
        auto& me = *static_cast<Relay*>(self);
        if (me.keys_) {
            (void)me.keys_->refresh();
        } else if (++me.beats_ % 600 == 0) {
            spdlog::warn("--insecure-redis: Redis documents are neither signed nor verified");
        }
        me.heartbeat();
    });
}

void Relay::heartbeat() {
    if (!primary_ || !primary_->up()) {
        return;
    }
    AgentReport report;
    report.revision = host_.applied_revision();
    report.heartbeat_ms = unix_ms();
    report.segment = options_.segment;
    report.role = std::string(to_string(role_));
    report.state = std::string(host_.state_name());
    report.rejected = host_.rejected_values(kMaxReportedRejections);
    report.rejected_keys = host_.rejected_keys();
    primary_->command(
        {"HSET", std::string(kAgentsHash), options_.pod_name, seal(encode_agent_report(report))},
        nullptr);
}

void Relay::count_snapshot_load() {
    if (metrics_ != nullptr) {
        metrics_->count_l2_snapshot_load();
    }
}

void Relay::note_bad(std::string_view source, std::string_view where, std::string_view why) {
    reject_document(source, "malformed", std::string(where) + ": " + std::string(why));
}

std::string Relay::seal(const std::string& document) const {
    return keys_ ? keys_->ring().sign(document) : document;
}

std::optional<std::string_view> Relay::open(std::string_view text, std::string_view source,
                                            std::string_view where) {
    auto document = open_document(text, ring());
    if (!document) {
        reject_document(source, "signature", std::string(where) + ": " + document.reason());
        return std::nullopt;
    }
    return *document;
}

bool Relay::fresh_enough(const L2Snapshot& snapshot, std::string_view source) {
    const std::uint64_t now = unix_ms();
    const auto max_age = static_cast<std::uint64_t>(options_.snapshot_max_age.count());
    constexpr std::uint64_t kClockSkewMs = 5 * 60 * 1000;
    std::string why;
    if (snapshot.created_ms == 0) {
        why = "it carries no creation time";
    } else if (snapshot.created_ms > now + kClockSkewMs) {
        why = "it was created in the future (clock skew, or forged)";
    } else if (now > snapshot.created_ms && now - snapshot.created_ms > max_age) {
        why = "it is " + std::to_string((now - snapshot.created_ms) / 1000) +
              " s old, older than --snapshot-max-age";
    }
    if (!why.empty()) {
        reject_document(source, "stale", std::string(kSnapshotKey) + ": " + why);
        return false;
    }
    if (metrics_ != nullptr) {
        metrics_->set_snapshot_age(
            std::chrono::milliseconds(now > snapshot.created_ms ? now - snapshot.created_ms : 0));
    }
    return true;
}

bool Relay::fence_ok(const Batch& batch, std::string_view source) {
    if (batch.fence < max_fence_) {
        reject_document(source, "fence",
                        "a batch of revision " + std::to_string(batch.revision) + " with fence " +
                            std::to_string(batch.fence) + ", below " + std::to_string(max_fence_) +
                            " already seen");
        return false;
    }
    max_fence_ = batch.fence;
    return true;
}

}  // namespace yuxi::config::agent
