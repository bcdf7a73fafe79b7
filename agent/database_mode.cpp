// Database mode: PostgreSQL → segment, driven by the source's results and a heartbeat.
#include "database_mode.hpp"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "database_url.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config::agent {
namespace {

constexpr std::chrono::seconds kHeartbeat{1};

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
    try {
        s.conninfo = to_libpq_conninfo(o.database_url, "yuxi-config-agent");
    } catch (const DatabaseUrlError&) {
    }
    s.safety_poll = o.safety_poll;
    s.max_catchup_batch = o.max_catchup_batch;
    return s;
}

}  // namespace

DatabaseMode::DatabaseMode(const Options& options, event_base* base)
    : options_(options), base_(base), source_(source_options(options), base, *this, stats_) {}

DatabaseMode::~DatabaseMode() = default;

void DatabaseMode::start() {
    const std::string redacted = redact_database_url(options_.database_url);
    check_conninfo(to_libpq_conninfo(options_.database_url, "yuxi-config-agent"), redacted);
    if (detail::writer_lock_held(options_.segment)) {
        throw WriterError("another yuxi-config-agent is already writing segment '" +
                          options_.segment + "'; stop it or choose another --segment");
    }
    tick_event_.reset(event_new(base_, -1, EV_PERSIST, &DatabaseMode::on_tick, this));
    const timeval tick{kHeartbeat.count(), 0};
    if (!tick_event_ || event_add(tick_event_.get(), &tick) != 0) {
        throw std::system_error(ENOMEM, std::generic_category(), "libevent: heartbeat timer");
    }
    spdlog::info("database mode: {} → segment '{}' (safety poll every {} ms, catch-up pages of {})",
                 redacted, options_.segment, options_.safety_poll.count(),
                 options_.max_catchup_batch);
    source_.start();
}

void DatabaseMode::wake() {
    spdlog::info("catching up now (SIGHUP)");
    source_.wake();
}

void DatabaseMode::stop() noexcept {
    source_.stop();
    tick_event_.reset();
    if (writer_) {
        writer_->set_source_state(SourceState::stopped);
        writer_->heartbeat();
        writer_->notify();
        spdlog::info("segment '{}': stopped at revision {}; it stays readable", options_.segment,
                     writer_->revision());
    }
}

void DatabaseMode::on_tick(evutil_socket_t, short, void* self) {
    auto& me = *static_cast<DatabaseMode*>(self);
    if (me.writer_) {
        me.writer_->heartbeat();
    }
}

std::vector<Change> DatabaseMode::admit(std::vector<Change>&& changes, std::uint64_t revision,
                                        bool unique_keys) {
    // Later changes of a key win; keep the first appearance's position.
    std::vector<Change> out;
    out.reserve(changes.size());
    if (changes.size() == 1 || unique_keys) {
        out = std::move(changes);
    } else {
        std::unordered_map<std::string, std::size_t> index;
        index.reserve(changes.size());
        for (Change& c : changes) {
            const auto [it, inserted] = index.try_emplace(entry_id(c.ns, c.key), out.size());
            if (inserted) {
                out.push_back(std::move(c));
            } else {
                out[it->second] = std::move(c);
            }
        }
    }
    std::size_t kept = 0;
    for (Change& c : out) {
        if (c.value && c.value->size() > options_.max_value_bytes) {
            ++stats_.refused_values;
            spdlog::error(
                "{} key '{}' at revision {} refused: its value of {} bytes exceeds the limit of "
                "{} (--max-value-bytes); readers keep its last published value, if any",
                ns_name(c.ns), c.key, revision, c.value->size(), options_.max_value_bytes);
            refused_.insert(entry_id(c.ns, c.key));
            continue;
        }
        if (!refused_.empty()) {
            refused_.erase(entry_id(c.ns, c.key));
        }
        if (&out[kept] != &c) {
            out[kept] = std::move(c);
        }
        ++kept;
    }
    out.resize(kept);
    return out;
}

void DatabaseMode::note_rejected(const std::vector<Rejected>& rejected, std::uint64_t revision) {
    for (const Rejected& r : rejected) {
        ++stats_.refused_values;
        spdlog::error("key '{}' at revision {} refused by the segment: {}", r.key, revision,
                      r.reason);
        // The writer names the key without its namespace: count both as not published.
        refused_.insert(entry_id(Namespace::config, r.key));
        refused_.insert(entry_id(Namespace::metadata, r.key));
    }
}

void DatabaseMode::fatal(const std::string& message) {
    spdlog::critical("{}", message);
    exit_code_ = 1;
    event_base_loopbreak(base_);
}

bool DatabaseMode::create_segment(const std::vector<Change>& entries, std::uint64_t revision) {
    if (!writer_ && detail::writer_lock_held(options_.segment)) {
        fatal("another yuxi-config-agent took segment '" + options_.segment +
              "'; stopping (only one agent may write a segment)");
        return false;
    }
    WriterOptions wo;
    wo.name = options_.segment;
    wo.max_value_bytes = options_.max_value_bytes;
    wo.initial_state = refused_.empty() ? SourceState::ok : SourceState::stale;
    std::vector<Rejected> rejected;
    writer_.reset();
    writer_.emplace(SegmentWriter::create(wo, entries, revision, &rejected));
    last_state_ = wo.initial_state;
    note_rejected(rejected, revision);
    return true;
}

bool DatabaseMode::publish_snapshot(DbSnapshot&& snapshot) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t revision = snapshot.revision;
    std::size_t configs = 0;
    for (const Change& c : snapshot.entries) {
        configs += c.ns == Namespace::config ? 1 : 0;
    }
    const std::size_t metadata = snapshot.entries.size() - configs;
    refused_.clear();
    // A snapshot has each key once (the tables' UNIQUE constraints).
    const std::vector<Change> entries = admit(std::move(snapshot.entries), revision, true);
    try {
        if (!writer_) {
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
        } else if (revision > writer_->revision()) {
            // A resync: publish the difference as one batch, so readers jump atomically.
            std::unordered_map<std::string, const Change*> want;
            want.reserve(entries.size());
            for (const Change& c : entries) {
                want.emplace(entry_id(c.ns, c.key), &c);
            }
            std::vector<Change> diff;
            writer_->for_each([&](const detail::EntryRef& e) {
                std::string id = entry_id(e.ns(), e.key);
                const auto it = want.find(id);
                if (it == want.end()) {
                    if (!refused_.contains(id)) {
                        diff.push_back({e.ns(), std::string(e.key), std::nullopt, std::string()});
                    }
                } else if (it->second->value == e.value && it->second->category == e.category) {
                    want.erase(it);
                }
            });
            for (const auto& [id, c] : want) {
                diff.push_back(*c);
            }
            const ApplyResult result = writer_->apply(diff, revision);
            note_rejected(result.rejected, revision);
            spdlog::info("resync: {} entries differed from the snapshot", diff.size());
        } else {
            spdlog::warn(
                "the database is at revision {}, not after the segment's {}: replacing the "
                "segment with the database's state",
                revision, writer_->revision());
            if (!create_segment(entries, revision)) {
                return false;
            }
        }
    } catch (const std::exception& e) {
        spdlog::error("cannot publish the snapshot at revision {}: {}", revision, e.what());
        return false;
    }
    up_ = true;
    update_state();
    writer_->heartbeat();
    writer_->notify();
    stats_.applied_revision = revision;
    spdlog::info(
        "published revision {}: snapshot of {} config and {} metadata entries (query {:.1f} ms, "
        "publish {:.1f} ms){}",
        revision, configs, metadata,
        std::chrono::duration<double, std::milli>(snapshot.query_time).count(), ms_since(t0),
        refused_.empty() ? "" : "; some keys refused");
    return true;
}

bool DatabaseMode::publish_transaction(LogTransaction&& tx) {
    if (!writer_) {
        return false;  // the source sends transactions only after a snapshot
    }
    const std::size_t logged = tx.changes.size();
    const std::vector<Change> batch = admit(std::move(tx.changes), tx.last_revision, false);
    ApplyResult result;
    try {
        result = writer_->apply(batch, tx.last_revision, tx.commit_ns);
    } catch (const std::exception& e) {
        spdlog::error("cannot publish revision {}: {}; readers keep revision {}", tx.last_revision,
                      e.what(), writer_->revision());
        return false;
    }
    writer_->notify();
    const std::uint64_t now = realtime_ns();
    stats_.last_commit_to_publish_ns = now > tx.commit_ns ? now - tx.commit_ns : 0;
    ++stats_.transactions_applied;
    stats_.changes_applied += logged;
    stats_.applied_revision = tx.last_revision;
    note_rejected(result.rejected, tx.last_revision);
    std::size_t deletes = 0;
    for (const Change& c : batch) {
        deletes += c.value ? 0 : 1;
        spdlog::debug("revision {}: {} {} '{}'", tx.last_revision, c.value ? "set" : "delete",
                      ns_name(c.ns), c.key);
    }
    spdlog::info("published revision {}: {} set, {} deleted (log revisions {}..{}){}",
                 tx.last_revision, batch.size() - deletes, deletes, tx.first_revision,
                 tx.last_revision, result.compacted ? " (segment compacted)" : "");
    update_state();
    return true;
}

void DatabaseMode::source_up(bool up) {
    up_ = up;
    update_state();
    if (writer_) {
        writer_->notify();
    }
}

void DatabaseMode::update_state() {
    if (!writer_) {
        return;
    }
    const SourceState state = up_ && refused_.empty() ? SourceState::ok : SourceState::stale;
    if (state == last_state_) {
        return;
    }
    if (state == SourceState::ok) {
        spdlog::info("source state: ok");
    } else if (!up_) {
        spdlog::warn(
            "source state: stale (no working connection to PostgreSQL; readers keep revision {})",
            writer_->revision());
    } else {
        spdlog::warn("source state: stale ({} key(s) refused; readers keep their last values)",
                     refused_.size());
    }
    last_state_ = state;
    writer_->set_source_state(state);
}

}  // namespace yuxi::config::agent
