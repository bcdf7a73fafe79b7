// The injector's Prometheus metrics and their text exposition (format 0.0.4, /metrics).
//
//   yuxi_config_injector_build_info{version}                  1
//   yuxi_config_injector_requests_total{handler,code}         HTTP requests answered
//   yuxi_config_injector_admissions_total{result}             reviews answered: patched,
//                                                             unchanged, refused
//   yuxi_config_injector_patches_total                        pods given the sidecar
//   yuxi_config_injector_refusals_total{reason}               allowed: false, by reason
//   yuxi_config_injector_unchanged_total{reason}              allowed as they are, by reason
//   yuxi_config_injector_invalid_requests_total{reason}       bodies that are no review (400)
//   yuxi_config_injector_admission_duration_seconds           histogram: review in, answer out
//   yuxi_config_injector_connections                          open now
//   yuxi_config_injector_connections_at_limit_total           times accepting paused at the cap
//   yuxi_config_injector_tls_reloads_total{result}            ok, failed
//   yuxi_config_injector_tls_certificate_expiry_timestamp_seconds
//   yuxi_config_injector_exceptions_total                     caught at a callback's boundary
//
// Every family, and every series of its fixed label values, is there from the first
// scrape, so that rate() and absent() work from the start. Label values are fixed words;
// no pod, namespace or annotation value ever becomes a label (unbounded cardinality).
//
// Not thread-safe: everything runs on the loop.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace yuxi::config::injector {

// Upper bounds of the admission duration buckets, in seconds: 50 µs to 1 s (the API
// server gives up after the webhook's timeoutSeconds, at most 30 s).
inline constexpr std::array<double, 14> kDurationBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};

class Metrics {
  public:
    // HTTP, by handler (mutate, healthz, readyz, metrics, other) and status code.
    void count_request(std::string_view handler, int code);
    // One review's outcome: `result` patched, unchanged or refused; `reason` the word
    // the decision gives (patch.hpp's Injection::reason).
    void count_admission(std::string_view result, std::string_view reason);
    void count_invalid(std::string_view reason);
    void observe_duration(std::chrono::nanoseconds d) noexcept;
    void set_connections(std::size_t open) noexcept { connections_ = open; }
    void count_connections_at_limit() noexcept { ++connections_at_limit_; }
    void count_tls_reload(bool ok) noexcept { ++(ok ? tls_reloads_ok_ : tls_reloads_failed_); }
    void set_certificate_expiry(std::int64_t unix_seconds) noexcept { expiry_ = unix_seconds; }
    void count_exception() noexcept { ++exceptions_; }

    std::string render() const;

    std::uint64_t patches() const noexcept { return counter(admissions_, "patched"); }
    std::uint64_t exceptions() const noexcept { return exceptions_; }

  private:
    using Counters = std::map<std::string, std::uint64_t, std::less<>>;
    static std::uint64_t counter(const Counters& c, std::string_view key) noexcept;

    Counters requests_;  // "handler\0code"
    Counters admissions_;
    Counters refusals_;
    Counters unchanged_;
    Counters invalid_;
    std::array<std::uint64_t, kDurationBuckets.size() + 1> buckets_{};  // the last: +Inf
    double duration_sum_ = 0;
    std::uint64_t duration_count_ = 0;
    std::size_t connections_ = 0;
    std::uint64_t connections_at_limit_ = 0;
    std::uint64_t tls_reloads_ok_ = 0;
    std::uint64_t tls_reloads_failed_ = 0;
    std::int64_t expiry_ = 0;
    std::uint64_t exceptions_ = 0;
};

}  // namespace yuxi::config::injector
