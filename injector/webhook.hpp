// One AdmissionReview in, one answer out: decode, decide, encode, count and log.
//
//   a body that is no review      HTTP 400 (413 when too large), text/plain reason
//   a review of something else    allowed: false, code 400 (the webhook's rules are wrong)
//   not a CREATE                  allowed, unchanged
//   a pod                         patch.hpp's decision: a patch, unchanged, or refused
//
// Not thread-safe: the loop's thread calls it.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "annotations.hpp"
#include "metrics.hpp"
#include "patch.hpp"

namespace yuxi::config::injector {

struct HttpAnswer {
    int code = 200;
    std::string body;
    std::string_view content_type = "application/json";
};

class Webhook {
  public:
    // `t` and `metrics` must outlive this object.
    Webhook(const SidecarTemplate& t, SidecarSettings defaults, Metrics& metrics,
            std::size_t max_request_bytes);

    HttpAnswer review(std::string_view body);

  private:
    HttpAnswer invalid(std::string_view reason_word, const std::string& reason, int code);
    // A warning at most once a second, with how many were left out since.
    void warn_limited(const std::string& message);

    const SidecarTemplate& template_;
    SidecarSettings defaults_;
    Metrics& metrics_;
    std::size_t max_request_bytes_;
    std::chrono::steady_clock::time_point last_warning_{};
    std::uint64_t warnings_dropped_ = 0;
};

}  // namespace yuxi::config::injector
