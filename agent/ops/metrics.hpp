// The agent's Prometheus metrics: the registry the modes and the relay update, and its
// rendering in the text exposition format 0.0.4 (GET /metrics, http_server.hpp).
//
// Two ways in. Events are pushed when they happen: a batch applied (its duration, its
// changes, its commit-to-published delay), a relay lease won or lost, an L2 snapshot
// loaded. States the modes already keep (the segment's revision, entries and size, the
// source state, the counters of their stats) are pulled from the mode at render time as
// a ModeStatus, so that nothing is counted twice and a scrape sees the current segment.
//
// Every family is rendered on every scrape, from the first one, so that rate() and
// absent() work from the agent's start; a labelled series the agent cannot have (Redis in
// file mode) is left out rather than shown as 0, which would read as "down".
//
// Never a configuration value or a secret: names, label values and numbers only, and the
// label values are fixed words (sources, states, error kinds) or the version.
//
// Not thread-safe: everything runs on the agent's loop.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent {

// Upper bounds, in seconds, of the apply-duration and propagation-delay buckets: 50 µs
// (a small batch) to 10 s (a large resync, or a change that waited out a reconnect).
inline constexpr std::array<double, 17> kLatencyBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};

// A histogram with fixed buckets; observations above the last bound count in +Inf only.
class Histogram {
  public:
    explicit Histogram(std::span<const double> bounds);

    void observe(double value) noexcept;

    std::span<const double> bounds() const noexcept { return bounds_; }
    // Observations per bucket (not cumulative); one more than bounds(): the last is +Inf's.
    const std::vector<std::uint64_t>& counts() const noexcept { return counts_; }
    double sum() const noexcept { return sum_; }
    std::uint64_t count() const noexcept { return count_; }

  private:
    std::span<const double> bounds_;
    std::vector<std::uint64_t> counts_;
    double sum_ = 0;
    std::uint64_t count_ = 0;
};

// Writes the text exposition format: one family at a time, HELP and TYPE first.
class ExpositionWriter {
  public:
    explicit ExpositionWriter(std::string& out) : out_(out) {}

    // `type`: counter, gauge or histogram.
    void family(std::string_view name, std::string_view help, std::string_view type);
    void sample(std::string_view name, double value);
    void sample(std::string_view name, std::string_view label, std::string_view label_value,
                double value);
    void sample(std::string_view name, std::string_view label1, std::string_view value1,
                std::string_view label2, std::string_view value2, double value);
    // `name`_bucket (cumulative, ending with le="+Inf"), `name`_sum and `name`_count.
    void histogram(std::string_view name, const Histogram& h);

  private:
    std::string& out_;
};

// The agent's version, for yuxi_config_build_info.
std::string_view agent_version() noexcept;

// A sample value: integers without a decimal point, +Inf, -Inf, NaN as Prometheus spells them.
std::string format_value(double value);
// A label value between its quotes: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);
// HELP text: backslash and newline escaped.
std::string escape_help(std::string_view text);

// What a mode reports at each scrape (FileMode::status(), DatabaseMode::status()).
struct ModeStatus {
    // GET /readyz: 200 when ready, else 503 with `not_ready` (one line, no secrets).
    bool ready = false;
    std::string not_ready;

    std::string_view source = "file";  // the source_up label: file or postgres
    bool source_up = false;

    bool published = false;  // a segment exists; the fields below describe it
    std::uint64_t revision = 0;
    std::uint64_t entries = 0;
    std::uint64_t segment_bytes = 0;
    double fill_ratio = 0;  // of the segment's arena, 0 to 1
    SourceState state = SourceState::starting;

    // Totals from the mode's stats; the relay's own counts are pushed (Metrics::count_*).
    std::uint64_t reconnects = 0;
    std::uint64_t resyncs = 0;
    std::vector<std::pair<std::string_view, std::uint64_t>> errors;  // by kind

    // High availability: the servers in use now ("host:port", empty: none), and the
    // failovers found to have rewound the history this agent had applied.
    std::string serving_postgres;
    std::string serving_redis;
    std::uint64_t history_rewinds = 0;
    // Values refused (the key keeps its last good value), by reason, and the keys held back.
    std::vector<std::pair<std::string, std::uint64_t>> rejected_values;
    std::uint64_t rejected_keys = 0;
};

class Metrics {
  public:
    explicit Metrics(std::string version);

    // The modes, where they publish.
    void observe_apply(std::chrono::nanoseconds duration);     // one batch into the segment
    void observe_propagation(std::chrono::nanoseconds delay);  // commit → published
    void count_updates_applied(std::uint64_t changes);         // sets and deletes published
    void heartbeat() noexcept;  // the segment's heartbeat was written now

    // The relay (and any later source).
    void set_relay_leader(bool leader) noexcept;
    // Redis documents unsigned (--insecure-redis), for yuxi_config_insecure.
    void set_insecure(bool insecure) noexcept { insecure_ = insecure; }
    // The age of the L2 snapshot last loaded (at its loading).
    void set_snapshot_age(std::chrono::milliseconds age) noexcept { snapshot_age_ = age; }
    void count_l2_snapshot_load() noexcept;
    // The first call for a source makes its series appear (and stay).
    void set_source_up(std::string_view source, bool up);
    void count_reconnect(std::string_view source);
    void count_error(std::string_view kind);
    void count_resync() noexcept;
    void count_history_rewound() noexcept;  // pushed by a follower that found one in Redis

    // The exposition of every family, with the mode's state `status`.
    std::string render(const ModeStatus& status) const;
    void render(const ModeStatus& status, std::string& out) const;

    const Histogram& apply_duration() const noexcept { return apply_duration_; }
    const Histogram& propagation_delay() const noexcept { return propagation_delay_; }
    std::uint64_t updates_applied() const noexcept { return updates_applied_; }

  private:
    void render_segment(const ModeStatus& s, ExpositionWriter& w) const;
    void render_sources(const ModeStatus& s, ExpositionWriter& w) const;
    void render_counters(const ModeStatus& s, ExpositionWriter& w) const;
    void render_high_availability(const ModeStatus& s, ExpositionWriter& w) const;

    std::string version_;
    Histogram apply_duration_{kLatencyBuckets};
    Histogram propagation_delay_{kLatencyBuckets};
    std::uint64_t updates_applied_ = 0;
    std::uint64_t heartbeat_ns_ = 0;  // CLOCK_REALTIME; 0 before the first beat
    bool relay_leader_ = false;
    bool insecure_ = false;
    std::optional<std::chrono::milliseconds> snapshot_age_;
    std::uint64_t l2_snapshot_loads_ = 0;
    std::uint64_t resyncs_ = 0;
    std::uint64_t history_rewinds_ = 0;
    std::map<std::string, bool, std::less<>> source_up_;
    std::map<std::string, std::uint64_t, std::less<>> reconnects_;
    std::map<std::string, std::uint64_t, std::less<>> errors_;
};

}  // namespace yuxi::config::agent
