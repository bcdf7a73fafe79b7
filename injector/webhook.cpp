// The /mutate handler: AdmissionReview to answer, with its metrics and log line.
#include "webhook.hpp"

#include <spdlog/spdlog.h>

#include "admission.hpp"

namespace yuxi::config::injector {
namespace {

// "namespace/name", or "namespace/generateName*" for a pod the API server has not named.
std::string pod_name(const AdmissionRequest& r) {
    std::string name = r.name;
    if (name.empty() && r.object.is_object()) {
        const auto meta = r.object.find("metadata");
        if (meta != r.object.end() && meta->is_object()) {
            for (const char* field : {"name", "generateName"}) {
                const auto n = meta->find(field);
                if (n != meta->end() && n->is_string() &&
                    !n->get_ref<const std::string&>().empty() &&
                    n->get_ref<const std::string&>().size() <= 253) {
                    name = n->get<std::string>() + (field[0] == 'g' ? "*" : "");
                    break;
                }
            }
        }
    }
    return r.namespace_name + "/" + (name.empty() ? "?" : name);
}

std::string_view word(Decision d) {
    switch (d) {
        case Decision::patched:
            return "patched";
        case Decision::unchanged:
            return "unchanged";
        case Decision::refused:
            return "refused";
    }
    return "?";
}

}  // namespace

Webhook::Webhook(const SidecarTemplate& t, SidecarSettings defaults, Metrics& metrics,
                 std::size_t max_request_bytes)
    : template_(t),
      defaults_(std::move(defaults)),
      metrics_(metrics),
      max_request_bytes_(max_request_bytes) {}

HttpAnswer Webhook::invalid(std::string_view reason_word, const std::string& reason, int code) {
    metrics_.count_invalid(reason_word);
    warn_limited("refused a request to /mutate: " + reason);
    return {code, "yuxi-config-injector: " + reason + "\n", "text/plain; charset=utf-8"};
}

void Webhook::warn_limited(const std::string& message) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ < std::chrono::seconds(1)) {
        ++warnings_dropped_;
        return;
    }
    last_warning_ = now;
    if (warnings_dropped_ > 0) {
        spdlog::warn("{} ({} more like it in the last second not logged)", message,
                     warnings_dropped_);
        warnings_dropped_ = 0;
    } else {
        spdlog::warn("{}", message);
    }
}

HttpAnswer Webhook::review(std::string_view body) {
    const auto start = std::chrono::steady_clock::now();
    ReviewProblem problem = ReviewProblem::none;
    auto request = decode_review(body, max_request_bytes_, &problem);
    if (!request) {
        return invalid(to_string(problem), request.reason(),
                       problem == ReviewProblem::too_large ? 413 : 400);
    }
    AdmissionAnswer answer;
    answer.uid = request->uid;
    Injection injection;
    if (!request->is_pod()) {
        injection.decision = Decision::refused;
        injection.reason = "not_a_pod";
        injection.message = "yuxi-config-injector mutates pods only, not " +
                            (request->group.empty() ? "" : request->group + "/") +
                            request->version + " " + request->kind + " (" + request->resource +
                            (request->sub_resource.empty() ? "" : "/" + request->sub_resource) +
                            "): the MutatingWebhookConfiguration's rules must select pods";
    } else if (request->operation != "CREATE") {
        injection.decision = Decision::unchanged;
        injection.reason = "not_create";
    } else {
        injection = inject(request->object, template_, defaults_);
    }
    answer.allowed = injection.decision != Decision::refused;
    answer.warnings = std::move(injection.warnings);
    if (injection.decision == Decision::patched) {
        answer.patch = std::move(injection.patch);
    } else if (injection.decision == Decision::refused) {
        answer.code = 400;
        answer.message = injection.message;
    }
    HttpAnswer out{200, encode_answer(answer)};
    metrics_.count_admission(word(injection.decision), injection.reason);
    metrics_.observe_duration(std::chrono::steady_clock::now() - start);

    const std::string who = pod_name(*request);
    switch (injection.decision) {
        case Decision::patched:
            spdlog::info("injected the sidecar into pod {} (uid {}{})", who, request->uid,
                         request->dry_run ? ", dry run" : "");
            break;
        case Decision::refused:
            spdlog::info("refused pod {} (uid {}): {}", who, request->uid, injection.message);
            break;
        case Decision::unchanged:
            spdlog::debug("left pod {} unchanged (uid {}): {}", who, request->uid,
                          injection.reason);
            break;
    }
    return out;
}

}  // namespace yuxi::config::injector
