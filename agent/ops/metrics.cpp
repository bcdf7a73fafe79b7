// Metrics: the registry of the agent's metric families and their text exposition.
#include "agent/ops/metrics.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <iterator>

#include "agent/ops/rejections.hpp"

#ifndef YUXI_CONFIG_VERSION
#define YUXI_CONFIG_VERSION "unknown"
#endif

namespace yuxi::config::agent {

namespace {

constexpr std::array<SourceState, 5> kStates = {SourceState::starting, SourceState::ok,
                                                SourceState::degraded, SourceState::stale,
                                                SourceState::stopped};

double seconds(std::chrono::nanoseconds d) {
    return std::chrono::duration<double>(d).count();
}

std::uint64_t realtime_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

double as_double(std::uint64_t n) {
    return static_cast<double>(n);
}

// Pulled and pushed totals by label value, merged: a kind the mode counts and the relay
// also counts is one series.
std::map<std::string_view, std::uint64_t> merged(
    const std::vector<std::pair<std::string_view, std::uint64_t>>& pulled,
    const std::map<std::string, std::uint64_t, std::less<>>& pushed) {
    std::map<std::string_view, std::uint64_t> out;
    for (const auto& [label, n] : pulled) {
        out[label] += n;
    }
    for (const auto& [label, n] : pushed) {
        out[label] += n;
    }
    return out;
}

}  // namespace

std::string_view agent_version() noexcept {
    return YUXI_CONFIG_VERSION;
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds), counts_(bounds.size() + 1, 0) {}

void Histogram::observe(double value) noexcept {
    // le is "less than or equal": a value on a bound counts in that bound's bucket.
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    ++counts_[static_cast<std::size_t>(it - bounds_.begin())];
    sum_ += value;
    ++count_;
}

std::string format_value(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    return fmt::format("{}", value);
}

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (const char c : value) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '"') {
            out += "\\\"";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string escape_help(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

void ExpositionWriter::family(std::string_view name, std::string_view help, std::string_view type) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name,
                   escape_help(help), name, type);
}

void ExpositionWriter::sample(std::string_view name, double value) {
    fmt::format_to(std::back_inserter(out_), "{} {}\n", name, format_value(value));
}

void ExpositionWriter::sample(std::string_view name, std::string_view label,
                              std::string_view label_value, double value) {
    fmt::format_to(std::back_inserter(out_), "{}{{{}=\"{}\"}} {}\n", name, label,
                   escape_label_value(label_value), format_value(value));
}

void ExpositionWriter::sample(std::string_view name, std::string_view label1,
                              std::string_view value1, std::string_view label2,
                              std::string_view value2, double value) {
    fmt::format_to(std::back_inserter(out_), "{}{{{}=\"{}\",{}=\"{}\"}} {}\n", name, label1,
                   escape_label_value(value1), label2, escape_label_value(value2),
                   format_value(value));
}

void ExpositionWriter::histogram(std::string_view name, const Histogram& h) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.bounds().size(); ++i) {
        cumulative += h.counts()[i];
        fmt::format_to(std::back_inserter(out_), "{}_bucket{{le=\"{}\"}} {}\n", name,
                       format_value(h.bounds()[i]), cumulative);
    }
    fmt::format_to(std::back_inserter(out_), "{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count());
    fmt::format_to(std::back_inserter(out_), "{}_sum {}\n{}_count {}\n", name,
                   format_value(h.sum()), name, h.count());
}

Metrics::Metrics(std::string version) : version_(std::move(version)) {}

void Metrics::observe_apply(std::chrono::nanoseconds duration) {
    apply_duration_.observe(seconds(duration));
}

void Metrics::observe_propagation(std::chrono::nanoseconds delay) {
    propagation_delay_.observe(seconds(delay));
}

void Metrics::count_updates_applied(std::uint64_t changes) {
    updates_applied_ += changes;
}

void Metrics::heartbeat() noexcept {
    heartbeat_ns_ = realtime_ns();
}

void Metrics::set_relay_leader(bool leader) noexcept {
    relay_leader_ = leader;
}

void Metrics::count_l2_snapshot_load() noexcept {
    ++l2_snapshot_loads_;
}

void Metrics::set_source_up(std::string_view source, bool up) {
    const auto it = source_up_.find(source);
    if (it == source_up_.end()) {
        source_up_.emplace(std::string(source), up);
    } else {
        it->second = up;
    }
}

void Metrics::count_reconnect(std::string_view source) {
    const auto it = reconnects_.find(source);
    if (it == reconnects_.end()) {
        reconnects_.emplace(std::string(source), 1);
    } else {
        ++it->second;
    }
}

void Metrics::count_error(std::string_view kind) {
    const auto it = errors_.find(kind);
    if (it == errors_.end()) {
        errors_.emplace(std::string(kind), 1);
    } else {
        ++it->second;
    }
}

void Metrics::count_resync() noexcept {
    ++resyncs_;
}

void Metrics::count_history_rewound() noexcept {
    ++history_rewinds_;
}

void Metrics::render_high_availability(const ModeStatus& s, ExpositionWriter& w) const {
    w.family("yuxi_config_history_rewound_total",
             "Failovers found to have lost revisions this agent had applied (it resynced to "
             "the database's state).",
             "counter");
    w.sample("yuxi_config_history_rewound_total", as_double(s.history_rewinds + history_rewinds_));
    w.family("yuxi_config_serving_server_info",
             "The server each source uses now, as labels (host:port); the value is 1.", "gauge");
    if (!s.serving_postgres.empty()) {
        w.sample("yuxi_config_serving_server_info", "source", "postgres", "address",
                 s.serving_postgres, 1);
    }
    if (!s.serving_redis.empty()) {
        w.sample("yuxi_config_serving_server_info", "source", "redis", "address", s.serving_redis,
                 1);
    }
}

std::string Metrics::render(const ModeStatus& status) const {
    std::string out;
    render(status, out);
    return out;
}

void Metrics::render(const ModeStatus& status, std::string& out) const {
    out.reserve(out.size() + 6144);
    ExpositionWriter w(out);
    w.family("yuxi_config_up", "1 while the agent runs: its event loop answered this scrape.",
             "gauge");
    w.sample("yuxi_config_up", 1);
    w.family("yuxi_config_build_info", "The agent's version, as a label; the value is 1.", "gauge");
    w.sample("yuxi_config_build_info", "version", version_, 1);
    w.family("yuxi_config_ready",
             "1 when GET /readyz answers 200: a first snapshot is published and the source is "
             "not stale past its limit.",
             "gauge");
    w.sample("yuxi_config_ready", status.ready ? 1 : 0);
    render_segment(status, w);
    render_sources(status, w);
    render_counters(status, w);
    render_high_availability(status, w);
}

void Metrics::render_segment(const ModeStatus& s, ExpositionWriter& w) const {
    w.family("yuxi_config_revision", "The revision the segment publishes.", "gauge");
    w.sample("yuxi_config_revision", as_double(s.revision));
    w.family("yuxi_config_entries", "Live entries in the segment, config and metadata.", "gauge");
    w.sample("yuxi_config_entries", as_double(s.entries));
    w.family("yuxi_config_segment_bytes", "Size of the segment in /dev/shm, in bytes.", "gauge");
    w.sample("yuxi_config_segment_bytes", as_double(s.segment_bytes));
    w.family("yuxi_config_segment_fill_ratio",
             "Used fraction of the segment's arena; compaction brings it down.", "gauge");
    w.sample("yuxi_config_segment_fill_ratio", s.fill_ratio);
    w.family("yuxi_config_heartbeat_timestamp_seconds",
             "Unix time of the segment's last heartbeat (written every second). No sample "
             "before the segment exists.",
             "gauge");
    if (s.published && heartbeat_ns_ != 0) {
        w.sample("yuxi_config_heartbeat_timestamp_seconds", as_double(heartbeat_ns_) / 1e9);
    }
    w.family("yuxi_config_updates_applied_total", "Changes (sets and deletes) published.",
             "counter");
    w.sample("yuxi_config_updates_applied_total", as_double(updates_applied_));
    w.family("yuxi_config_apply_duration_seconds", "Time to apply one batch to the segment.",
             "histogram");
    w.histogram("yuxi_config_apply_duration_seconds", apply_duration_);
    w.family("yuxi_config_propagation_delay_seconds",
             "From a change's commit in PostgreSQL to its publication in the segment.",
             "histogram");
    w.histogram("yuxi_config_propagation_delay_seconds", propagation_delay_);
}

void Metrics::render_sources(const ModeStatus& s, ExpositionWriter& w) const {
    std::map<std::string_view, bool> up;
    up[s.source] = s.source_up;
    for (const auto& [source, is_up] : source_up_) {
        up[source] = is_up;
    }
    w.family("yuxi_config_source_up", "1 while the agent reaches the source.", "gauge");
    for (const auto& [source, is_up] : up) {
        w.sample("yuxi_config_source_up", "source", source, is_up ? 1 : 0);
    }
    w.family("yuxi_config_source_state",
             "The state readers see in the segment's health: 1 for the current state.", "gauge");
    for (const SourceState state : kStates) {
        w.sample("yuxi_config_source_state", "state", to_string(state), s.state == state ? 1 : 0);
    }
    w.family("yuxi_config_relay_leader",
             "1 while this agent holds the relay lease (database mode with Redis).", "gauge");
    w.sample("yuxi_config_relay_leader", relay_leader_ ? 1 : 0);
    w.family("yuxi_config_insecure",
             "1 while the agent runs with Redis unsigned (--insecure-redis): whoever can write to "
             "Redis can change what pods read.",
             "gauge");
    w.sample("yuxi_config_insecure", insecure_ ? 1 : 0);
    w.family("yuxi_config_snapshot_age_seconds",
             "Age of the Redis L2 snapshot this agent last loaded, when it loaded it (no sample "
             "if it never loaded one).",
             "gauge");
    if (snapshot_age_) {
        w.sample("yuxi_config_snapshot_age_seconds",
                 std::chrono::duration<double>(*snapshot_age_).count());
    }
}

void Metrics::render_counters(const ModeStatus& s, ExpositionWriter& w) const {
    w.family("yuxi_config_reconnects_total",
             "Reconnections to a source after the first connection.", "counter");
    std::vector<std::pair<std::string_view, std::uint64_t>> pulled;
    if (s.source != "file") {
        pulled.emplace_back(s.source, s.reconnects);
    }
    for (const auto& [source, n] : merged(pulled, reconnects_)) {
        w.sample("yuxi_config_reconnects_total", "source", source, as_double(n));
    }
    w.family("yuxi_config_resyncs_total",
             "Full reloads after the first (the change log was trimmed past this agent).",
             "counter");
    w.sample("yuxi_config_resyncs_total", as_double(s.resyncs + resyncs_));
    w.family("yuxi_config_errors_total", "Errors by kind.", "counter");
    for (const auto& [kind, n] : merged(s.errors, errors_)) {
        w.sample("yuxi_config_errors_total", "kind", kind, as_double(n));
    }
    w.family("yuxi_config_l2_snapshot_loads_total",
             "Boots from the Redis L2 snapshot while PostgreSQL was unreachable.", "counter");
    w.sample("yuxi_config_l2_snapshot_loads_total", as_double(l2_snapshot_loads_));
    w.family("yuxi_config_rejected_values_total",
             "Values the agent refused to publish (over the size limit, not JSON, breaking their "
             "key's JSON Schema, refused by the segment), by reason; each key kept its last "
             "good value.",
             "counter");
    for (const auto& [reason, n] : s.rejected_values) {
        w.sample("yuxi_config_rejected_values_total", "reason", reason, as_double(n));
    }
    w.family("yuxi_config_rejected_keys",
             "Keys that hold a last good value instead of the source's, until a valid value "
             "of the key arrives.",
             "gauge");
    w.sample("yuxi_config_rejected_keys", as_double(s.rejected_keys));
    w.family("yuxi_config_rejected_documents_total",
             "Documents, replies and requests from outside that the agent refused, by source "
             "and reason; the agent kept serving what it had.",
             "counter");
    for (const RejectionCount& r : rejection_counts()) {
        w.sample("yuxi_config_rejected_documents_total", "source", r.source, "reason", r.reason,
                 as_double(r.count));
    }
}

}  // namespace yuxi::config::agent
