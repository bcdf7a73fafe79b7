// The injector's metrics: counters, the admission-duration histogram, their exposition.
#include "metrics.hpp"

#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <span>

#include "options.hpp"

namespace yuxi::config::injector {
namespace {

// The label values every scrape shows, even at zero.
constexpr std::array<std::string_view, 3> kResults = {"patched", "unchanged", "refused"};
constexpr std::array<std::string_view, 4> kRefusals = {"annotation", "conflict", "malformed_pod",
                                                       "not_a_pod"};
constexpr std::array<std::string_view, 4> kUnchanged = {"not_requested", "opted_out",
                                                        "already_injected", "not_create"};
constexpr std::array<std::string_view, 6> kInvalid = {"too_large",    "too_deep",     "not_json",
                                                      "not_a_review", "content_type", "method"};

class Writer {
  public:
    explicit Writer(std::string& out) : out_(out) {}

    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    }
    void sample(std::string_view name, double value) {
        out_ += fmt::format("{} {}\n", name, value);
    }
    // `labels` is written as it is: the callers pass fixed words only.
    void sample(std::string_view name, std::string_view labels, double value) {
        out_ += fmt::format("{}{{{}}} {}\n", name, labels, value);
    }

  private:
    std::string& out_;
};

double num(std::uint64_t n) {
    return static_cast<double>(n);
}

void labelled(Writer& w, std::string_view name, std::string_view label,
              std::span<const std::string_view> fixed,
              const std::map<std::string, std::uint64_t, std::less<>>& counts) {
    std::map<std::string_view, std::uint64_t> all;
    for (const std::string_view v : fixed) {
        all[v] = 0;
    }
    for (const auto& [k, n] : counts) {
        all[k] = n;
    }
    for (const auto& [k, n] : all) {
        w.sample(name, fmt::format("{}=\"{}\"", label, k), num(n));
    }
}

}  // namespace

std::uint64_t Metrics::counter(const Counters& c, std::string_view key) noexcept {
    const auto it = c.find(key);
    return it == c.end() ? 0 : it->second;
}

void Metrics::count_request(std::string_view handler, int code) {
    std::string key(handler);
    key += '\0';
    key += std::to_string(code);
    ++requests_[key];
}

void Metrics::count_admission(std::string_view result, std::string_view reason) {
    ++admissions_[std::string(result)];
    if (result == "refused") {
        ++refusals_[std::string(reason)];
    } else if (result == "unchanged") {
        ++unchanged_[std::string(reason)];
    }
}

void Metrics::count_invalid(std::string_view reason) {
    ++invalid_[std::string(reason)];
}

void Metrics::observe_duration(std::chrono::nanoseconds d) noexcept {
    const double s = std::chrono::duration<double>(d).count();
    // le is "less than or equal": a value on a bound counts in that bound's bucket.
    const auto it = std::lower_bound(kDurationBuckets.begin(), kDurationBuckets.end(), s);
    ++buckets_[static_cast<std::size_t>(it - kDurationBuckets.begin())];
    duration_sum_ += s;
    ++duration_count_;
}

std::string Metrics::render() const {
    std::string out;
    out.reserve(4096);
    Writer w(out);
    w.family("yuxi_config_injector_build_info", "gauge", "The injector's version.");
    w.sample("yuxi_config_injector_build_info", fmt::format("version=\"{}\"", version()), 1);

    w.family("yuxi_config_injector_requests_total", "counter",
             "HTTP requests answered, by handler and status code.");
    for (const auto& [key, n] : requests_) {
        const auto nul = key.find('\0');
        w.sample("yuxi_config_injector_requests_total",
                 fmt::format("code=\"{}\",handler=\"{}\"", key.substr(nul + 1), key.substr(0, nul)),
                 num(n));
    }
    w.family("yuxi_config_injector_admissions_total", "counter",
             "AdmissionReviews answered, by result: patched, unchanged or refused.");
    labelled(w, "yuxi_config_injector_admissions_total", "result", kResults, admissions_);
    w.family("yuxi_config_injector_patches_total", "counter", "Pods given the sidecar.");
    w.sample("yuxi_config_injector_patches_total", num(patches()));
    w.family("yuxi_config_injector_refusals_total", "counter",
             "AdmissionReviews answered allowed: false, by reason.");
    labelled(w, "yuxi_config_injector_refusals_total", "reason", kRefusals, refusals_);
    w.family("yuxi_config_injector_unchanged_total", "counter",
             "Pods allowed without a patch, by reason.");
    labelled(w, "yuxi_config_injector_unchanged_total", "reason", kUnchanged, unchanged_);
    w.family("yuxi_config_injector_invalid_requests_total", "counter",
             "Requests to /mutate that are no AdmissionReview (answered 4xx), by reason.");
    labelled(w, "yuxi_config_injector_invalid_requests_total", "reason", kInvalid, invalid_);

    constexpr std::string_view kHist = "yuxi_config_injector_admission_duration_seconds";
    w.family(kHist, "histogram",
             "Time from a whole AdmissionReview read to its answer queued, in seconds.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < kDurationBuckets.size(); ++i) {
        cumulative += buckets_[i];
        w.sample(fmt::format("{}_bucket", kHist), fmt::format("le=\"{}\"", kDurationBuckets[i]),
                 num(cumulative));
    }
    cumulative += buckets_.back();
    w.sample(fmt::format("{}_bucket", kHist), "le=\"+Inf\"", num(cumulative));
    w.sample(fmt::format("{}_sum", kHist), duration_sum_);
    w.sample(fmt::format("{}_count", kHist), num(duration_count_));

    w.family("yuxi_config_injector_connections", "gauge", "Connections open now.");
    w.sample("yuxi_config_injector_connections", num(connections_));
    w.family("yuxi_config_injector_connections_at_limit_total", "counter",
             "Times --max-connections were open and new connections had to wait.");
    w.sample("yuxi_config_injector_connections_at_limit_total", num(connections_at_limit_));
    w.family("yuxi_config_injector_tls_reloads_total", "counter",
             "Certificate and key pairs read after a change, by result.");
    w.sample("yuxi_config_injector_tls_reloads_total", "result=\"failed\"",
             num(tls_reloads_failed_));
    w.sample("yuxi_config_injector_tls_reloads_total", "result=\"ok\"", num(tls_reloads_ok_));
    w.family("yuxi_config_injector_tls_certificate_expiry_timestamp_seconds", "gauge",
             "The notAfter of the certificate in use, in seconds since the epoch.");
    w.sample("yuxi_config_injector_tls_certificate_expiry_timestamp_seconds",
             static_cast<double>(expiry_));
    w.family("yuxi_config_injector_exceptions_total", "counter",
             "Exceptions caught at an event callback's boundary (a defect; the process goes on).");
    w.sample("yuxi_config_injector_exceptions_total", num(exceptions_));
    return out;
}

}  // namespace yuxi::config::injector
