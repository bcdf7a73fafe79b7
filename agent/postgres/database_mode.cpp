// Database mode: PostgreSQL → segment, driven by the source's results and a heartbeat.
#include "agent/postgres/database_mode.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "agent/ops/rejections.hpp"
#include "core/database_url.hpp"
#include "core/json_document.hpp"
#include "core/text.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config::agent {
namespace {

// How long PostgreSQL may stay silent at start before the L2 snapshot is tried.
constexpr std::chrono::seconds kBootWait{2};

const char* ns_name(Namespace ns) {
    return ns == Namespace::config ? "config" : "metadata";
}

// The identity of an entry as one string: the namespace byte, then the key.
std::string entry_id(Namespace ns, std::string_view key) {
    std::string id(1, static_cast<char>(ns));
    id += key;
    return id;
}

std::uint64_t realtime_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

PostgresSourceOptions source_options(const Options& o) {
    PostgresSourceOptions s;
    s.redacted_url = redact_database_url(o.database_url);
    // Options checked the URL already; an empty conninfo here fails at start() instead.
    if (auto conninfo = database_conninfo(o.database_url, "yuxi-config-agent")) {
        s.conninfo = std::move(*conninfo);
    }
    s.safety_poll = o.safety_poll;
    s.max_catchup_batch = o.max_catchup_batch;
    s.agent_name = o.pod_name;
    return s;
}

}  // namespace

DatabaseMode::DatabaseMode(const Options& options, event_base* base)
    : options_(options),
      base_(base),
      source_(source_options(options), base, *this, stats_),
      publisher_(writer_options(options), base, [this] { tick(); }),
      admission_(options.max_value_bytes) {}

DatabaseMode::~DatabaseMode() = default;

void DatabaseMode::start() {
    const std::string redacted = redact_database_url(options_.database_url);
    if (const auto conninfo = database_conninfo(options_.database_url, "yuxi-config-agent");
        !conninfo) {
        throw OptionsError(conninfo.reason());
    }
    if (detail::writer_lock_held(options_.segment)) {
        throw WriterError("another yuxi-config-agent is already writing segment '" +
                          options_.segment + "'; stop it or choose another --segment");
    }
    publisher_.start();
    spdlog::info("database mode: {} → segment '{}' (safety poll every {} ms, catch-up pages of {})",
                 redacted, options_.segment, options_.safety_poll.count(),
                 options_.max_catchup_batch);
    if (!options_.redis.enabled()) {
        pg_use_ = pg_applied_use_ = PgUse::listen;
        source_.start();
        return;
    }
    pg_use_ = PgUse::off;
    pg_use_event_.reset(evtimer_new(base_, &DatabaseMode::on_pg_use, this));
    boot_event_.reset(evtimer_new(base_, &DatabaseMode::on_boot_timer, this));
    const timeval boot = {kBootWait.count(), 0};
    if (!pg_use_event_ || !boot_event_ || event_add(boot_event_.get(), &boot) != 0) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: relay events");
    }
    relay_ = std::make_unique<Relay>(options_, base_, static_cast<RelayHost&>(*this));
    relay_->set_metrics(metrics_);
    relay_->start();
}

void DatabaseMode::use_postgres(PgUse use) {
    pg_use_ = use;
    // Never from inside the source's own callbacks: stopping it there would free the
    // connection under the code that is reading it.
    const timeval now{0, 0};
    if (pg_use_event_) {
        event_add(pg_use_event_.get(), &now);
    }
}

void DatabaseMode::on_pg_use(evutil_socket_t, short, void* self) {
    guarded("database", [&] {
        auto& me = *static_cast<DatabaseMode*>(self);
        if (me.pg_use_ == me.pg_applied_use_) {
            return;
        }
        me.pg_applied_use_ = me.pg_use_;
        if (me.pg_use_ == PgUse::off) {
            me.source_.stop();
            me.up_ = false;
            spdlog::info("PostgreSQL connection closed: Redis feeds this follower");
        } else {
            me.source_.want_fence(me.relay_ && me.relay_->leader());
            me.source_.resume_from(me.applied_revision(), me.pg_use_ == PgUse::listen);
            me.source_.start();
        }
        me.update_state();
    });
}

void DatabaseMode::on_boot_timer(evutil_socket_t, short, void* self) {
    guarded("database", [&] {
        auto& me = *static_cast<DatabaseMode*>(self);
        if (!me.publisher_.published() && me.relay_) {
            me.relay_->boot_from_l2();
        }
    });
}

std::uint64_t DatabaseMode::applied_revision() const {
    return publisher_.revision();
}

std::string_view DatabaseMode::state_name() const {
    return to_string(publisher_.state());
}

std::vector<Change> DatabaseMode::published_entries() const {
    std::vector<Change> out;
    if (!publisher_.published()) {
        return out;
    }
    out.reserve(publisher_.writer().live_entries());
    publisher_.writer().for_each([&](const auto& e) {
        out.push_back({e.ns(), std::string(e.key), std::string(e.value), std::string(e.category)});
    });
    return out;
}

bool DatabaseMode::load_snapshot(L2Snapshot&& snapshot, bool degraded) {
    if (degraded && (publisher_.published() || up_)) {
        return false;  // PostgreSQL answered meanwhile
    }
    if (!publish_entries(std::move(snapshot.entries), snapshot.revision, {})) {
        return false;
    }
    source_.note_snapshot(snapshot.revision, 0);
    // Until PostgreSQL confirms it, this content is only as good as the snapshot: degraded
    // whenever nothing feeds the segment (a follower fed by the relay is simply ok).
    degraded_ = true;
    if (degraded) {
        spdlog::warn("serving the L2 snapshot at revision {} without PostgreSQL",
                     snapshot.revision);
    }
    update_state();
    return true;
}

bool DatabaseMode::apply_batch(Batch&& batch) {
    if (!publisher_.published() || batch.prev != publisher_.revision()) {
        return false;
    }
    const bool ok = apply_changes(std::move(batch.entries), batch.revision, batch.commit_ns,
                                  "relay " + std::to_string(batch.fence));
    if (ok) {
        source_.note_applied(batch.revision, batch.commit_ns / 1000);
        update_state();
    }
    return ok;
}

void DatabaseMode::wake() {
    spdlog::info("catching up now (SIGHUP)");
    source_.wake();
}

void DatabaseMode::stop() noexcept {
    if (relay_) {
        relay_->stop();
    }
    source_.stop();
    publisher_.stop();
}

void DatabaseMode::tick() {
    update_state();  // a follower's currency changes without a batch
    if (fed()) {
        last_fed_ = std::chrono::steady_clock::now();
    }
}

std::vector<Change> DatabaseMode::admit(std::vector<Change>&& changes, std::uint64_t revision,
                                        bool snapshot) {
    std::vector<Change> out = admission_.admit(std::move(changes), revision, snapshot);
    stats_.refused_values = admission_.total();
    return out;
}

void DatabaseMode::note_rejected(const std::vector<Rejected>& rejected, std::uint64_t revision) {
    admission_.segment_refused(rejected, revision);
    stats_.refused_values = admission_.total();
}

std::vector<ValueRejection> DatabaseMode::rejected_values(std::size_t max) const {
    return admission_.newest(max);
}

void DatabaseMode::fatal(const std::string& message) {
    spdlog::critical("{}", message);
    exit_code_ = 1;
    event_base_loopbreak(base_);
}

bool DatabaseMode::create_segment(const std::vector<Change>& entries, std::uint64_t revision) {
    if (!publisher_.published() && detail::writer_lock_held(options_.segment)) {
        fatal("another yuxi-config-agent took segment '" + options_.segment +
              "'; stopping (only one agent may write a segment)");
        return false;
    }
    std::vector<Rejected> rejected;
    publisher_.create(entries, revision, admission_.clean() ? SourceState::ok : SourceState::stale,
                      &rejected);
    note_rejected(rejected, revision);
    return true;
}

bool DatabaseMode::publish_snapshot(DbSnapshot&& snapshot) {
    const std::uint64_t prev = applied_revision();
    const std::uint64_t revision = snapshot.revision;
    const bool rewound = snapshot.rewound;
    if (!publish_entries(std::move(snapshot.entries), revision, snapshot.query_time)) {
        return false;
    }
    up_ = true;
    if (degraded_) {
        degraded_ = false;
        spdlog::info("PostgreSQL answered: no longer degraded");
    }
    update_state();
    if (relay_ && rewound) {
        relay_->rewound(revision);
    } else if (relay_) {
        relay_->resynced(revision, prev);
    }
    return true;
}

bool DatabaseMode::publish_entries(std::vector<Change>&& loaded, std::uint64_t revision,
                                   std::chrono::nanoseconds query_time) {
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t configs = 0;
    for (const Change& c : loaded) {
        configs += c.ns == Namespace::config ? 1 : 0;
    }
    const std::size_t metadata = loaded.size() - configs;
    // A snapshot has each key once (the tables' UNIQUE constraints).
    const std::vector<Change> entries = admit(std::move(loaded), revision, true);
    try {
        if (!publisher_.published()) {
            const std::uint64_t existing = SegmentWriter::existing_revision(options_.segment);
            if (existing > revision) {
                spdlog::warn(
                    "segment '{}' was at revision {}, the database is at {}: readers move back "
                    "to the database's state",
                    options_.segment, existing, revision);
            }
            if (!create_segment(entries, revision)) {
                return false;
            }
        } else if (revision > publisher_.revision()) {
            // A resync: publish the difference as one batch, so readers jump atomically.
            std::unordered_map<std::string, const Change*> want;
            want.reserve(entries.size());
            for (const Change& c : entries) {
                want.emplace(entry_id(c.ns, c.key), &c);
            }
            std::vector<Change> diff;
            publisher_.writer().for_each([&](const auto& e) {
                std::string id = entry_id(e.ns(), e.key);
                const auto it = want.find(id);
                if (it == want.end()) {
                    if (!admission_.holds_back(id)) {
                        diff.push_back({e.ns(), std::string(e.key), std::nullopt, std::string()});
                    }
                } else if (it->second->value == e.value && it->second->category == e.category) {
                    want.erase(it);
                }
            });
            for (const auto& [id, c] : want) {
                diff.push_back(*c);
            }
            const ApplyResult result = publisher_.apply(diff, revision);
            note_rejected(result.rejected, revision);
            spdlog::info("resync: {} entries differed from the snapshot", diff.size());
        } else {
            spdlog::warn(
                "the database is at revision {}, not after the segment's {}: replacing the "
                "segment with the database's state",
                revision, publisher_.revision());
            if (!create_segment(entries, revision)) {
                return false;
            }
        }
    } catch (const std::exception& e) {
        spdlog::error("cannot publish the snapshot at revision {}: {}", revision, e.what());
        return false;
    }
    publisher_.notify();
    if (relay_) {
        relay_->revision_changed();
    }
    stats_.applied_revision = revision;
    spdlog::info(
        "published revision {}: snapshot of {} config and {} metadata entries (query {:.1f} ms, "
        "publish {:.1f} ms){}",
        revision, configs, metadata, std::chrono::duration<double, std::milli>(query_time).count(),
        ms_since(t0), admission_.clean() ? "" : "; some keys refused");
    return true;
}

bool DatabaseMode::publish_transaction(LogTransaction&& tx) {
    if (!publisher_.published()) {
        return false;  // the source sends transactions only after a snapshot
    }
    std::optional<Batch> fan_out;
    if (relay_ && relay_->leader()) {
        fan_out =
            Batch{tx.last_revision, publisher_.revision(), tx.commit_ns, 0, false, tx.changes};
    }
    const std::string origin = "log revisions " + std::to_string(tx.first_revision) + ".." +
                               std::to_string(tx.last_revision);
    if (!apply_changes(std::move(tx.changes), tx.last_revision, tx.commit_ns, origin)) {
        return false;
    }
    if (fan_out) {
        relay_->published(std::move(*fan_out));
    }
    update_state();
    return true;
}

bool DatabaseMode::apply_changes(std::vector<Change>&& changes, std::uint64_t revision,
                                 std::uint64_t commit_ns, const std::string& origin) {
    const std::size_t logged = changes.size();
    const std::vector<Change> batch = admit(std::move(changes), revision, false);
    ApplyResult result;
    try {
        result = publisher_.apply(batch, revision, commit_ns);
    } catch (const std::exception& e) {
        spdlog::error("cannot publish revision {}: {}; readers keep revision {}", revision,
                      e.what(), publisher_.revision());
        return false;
    }
    if (relay_) {
        relay_->revision_changed();
    }
    const std::uint64_t now = realtime_ns();
    stats_.last_commit_to_publish_ns = now > commit_ns && commit_ns > 0 ? now - commit_ns : 0;
    if (metrics_ != nullptr) {
        if (commit_ns > 0) {
            metrics_->observe_propagation(
                std::chrono::nanoseconds(stats_.last_commit_to_publish_ns));
        }
    }
    ++stats_.transactions_applied;
    stats_.changes_applied += logged;
    stats_.applied_revision = revision;
    note_rejected(result.rejected, revision);
    std::size_t deletes = 0;
    for (const Change& c : batch) {
        deletes += c.value ? 0 : 1;
        spdlog::debug("revision {}: {} {} '{}'", revision, c.value ? "set" : "delete",
                      ns_name(c.ns), c.key);
    }
    spdlog::info("published revision {}: {} set, {} deleted ({}){}", revision,
                 batch.size() - deletes, deletes, origin,
                 result.compacted ? " (segment compacted)" : "");
    return true;
}

void DatabaseMode::source_up(bool up) {
    if (!up && fed()) {
        // Fed until this moment: the stale limit counts from the loss, not from the last
        // heartbeat (which a busy machine may run late).
        last_fed_ = std::chrono::steady_clock::now();
    }
    up_ = up;
    if (up && degraded_) {
        degraded_ = false;
        spdlog::info("PostgreSQL answered: no longer degraded");
    }
    update_state();
    if (up && relay_) {
        relay_->postgres_caught_up();
    }
    publisher_.notify();
}

void DatabaseMode::update_state() {
    if (!publisher_.published()) {
        return;
    }
    const bool is_fed = fed();
    SourceState state = is_fed && admission_.clean() ? SourceState::ok : SourceState::stale;
    if (!is_fed && degraded_) {
        state = SourceState::degraded;
    }
    if (!publisher_.set_state(state)) {
        return;
    }
    if (state == SourceState::ok) {
        spdlog::info("source state: ok");
    } else if (state == SourceState::degraded) {
        spdlog::warn("source state: degraded (serving the L2 snapshot at revision {})",
                     publisher_.revision());
    } else if (!is_fed) {
        spdlog::warn(
            "source state: stale (no working connection to PostgreSQL{}; readers keep revision "
            "{})",
            relay_ ? " or the relay" : "", publisher_.revision());
    } else {
        spdlog::warn("source state: stale ({} key(s) refused; readers keep their last values)",
                     admission_.size());
    }
}

bool DatabaseMode::fed() const noexcept {
    return up_ || (relay_ && relay_->follower_current());
}

// Readiness survives a refused value and a short outage (readers keep the last good
// values, and the same fault would take every pod out); it fails once the segment has
// gone unfed past the stale limit, as readers may then miss changes.
ModeStatus DatabaseMode::status() const {
    ModeStatus s;
    s.source = "postgres";
    s.source_up = up_;
    publisher_.describe(s);
    const auto limit =
        std::max<std::chrono::milliseconds>(options_.safety_poll * kStalePolls, kMinStaleLimit);
    const auto unfed = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - last_fed_);
    s.ready = ready() && (publisher_.state() == SourceState::degraded || fed() || unfed <= limit);
    if (!publisher_.published()) {
        s.not_ready =
            "no snapshot published yet (PostgreSQL: " + std::string(to_string(source_.state())) +
            ")";
    } else if (!ready()) {
        s.not_ready = "serving the Redis L2 snapshot, and --serve-degraded is off";
    } else if (!s.ready) {
        s.not_ready = "no working connection to PostgreSQL for " +
                      std::to_string(unfed.count() / 1000) + " s (limit " +
                      std::to_string(limit.count() / 1000) + " s); serving revision " +
                      std::to_string(publisher_.revision());
    }
    s.reconnects = stats_.reconnects;
    s.resyncs = stats_.resyncs;
    s.serving_postgres = source_.server();
    s.serving_redis = relay_ ? relay_->redis_serving() : std::string();
    s.history_rewinds = stats_.history_rewinds;
    for (std::size_t k = 0; k < kDbErrorKinds; ++k) {
        const auto kind = static_cast<DbError>(k);
        s.errors.emplace_back(to_string(kind), stats_.error(kind));
    }
    s.errors.emplace_back("refused", stats_.refused_values);
    for (const auto& [reason, n] : admission_.counts()) {
        s.rejected_values.emplace_back(reason, n);
    }
    s.rejected_keys = admission_.size();
    return s;
}

}  // namespace yuxi::config::agent

namespace yuxi::config::agent {

void DatabaseMode::relay_fence(std::uint64_t fence) {
    if (relay_) {
        relay_->set_fence(fence);
    }
}

}  // namespace yuxi::config::agent
