// AdmissionReview (admission.k8s.io/v1) decoding and the answer's encoding.
//
// The request body is outside input: the API server sends it, but anything that reaches
// the port can send anything. Decoding is total: it bounds the size, then the nesting
// with a scan that builds nothing (nlohmann's parser is iterative, but its copy,
// comparison, diff and dump recurse, so a 100,000-deep array must never become a json),
// then parses without exceptions and reads every field with its type checked. A body that
// is not an AdmissionReview gets HTTP 400 (there is no uid to answer); a review for
// something the injector does not mutate gets an answer with allowed: false.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decoded.hpp"

namespace yuxi::config::injector {

// Deeper JSON is refused before parsing. A pod's deepest field (affinity's label selector
// values) sits about 12 levels inside the review.
inline constexpr std::size_t kMaxJsonDepth = 64;
inline constexpr std::size_t kMaxUidBytes = 128;

struct AdmissionRequest {
    std::string uid;
    std::string group;  // request.kind
    std::string version;
    std::string kind;
    std::string resource;  // request.resource.resource
    std::string sub_resource;
    std::string operation;  // CREATE, UPDATE, DELETE, CONNECT
    std::string namespace_name;
    std::string name;  // empty for a pod named by generateName
    bool dry_run = false;
    nlohmann::json object;  // request.object; null when absent

    // The request is for a Pod itself (not a subresource such as pods/exec).
    bool is_pod() const noexcept;
};

// Why `text` nests arrays and objects deeper than `max_depth`, or nothing. Looks only at
// brackets outside strings; everything else is left to the parser.
std::optional<std::string> nesting_problem(std::string_view text, std::size_t max_depth);

// Why a body is not a review, in a word for the metrics.
enum class ReviewProblem { none, too_large, too_deep, not_json, not_a_review };
std::string_view to_string(ReviewProblem p) noexcept;

// The review in `body`, or why it is not one (the reason is safe to send back and log);
// `problem`, if given, receives its kind.
Decoded<AdmissionRequest> decode_review(std::string_view body, std::size_t max_bytes,
                                        ReviewProblem* problem = nullptr);

// What the webhook answers to one review.
struct AdmissionAnswer {
    std::string uid;
    bool allowed = true;
    std::optional<nlohmann::json> patch;  // RFC 6902 operations
    int code = 0;                         // with allowed: false, the HTTP-like status code
    std::string message;                  // with allowed: false, what kubectl shows
    std::vector<std::string> warnings;
};

// The AdmissionReview that carries `answer`, as JSON text (the patch base64-encoded).
std::string encode_answer(const AdmissionAnswer& answer);

// Standard base64 with padding, no line breaks.
std::string base64(std::string_view bytes);

}  // namespace yuxi::config::injector
