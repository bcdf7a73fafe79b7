// AdmissionReview decoding (total: size, nesting, then typed fields) and answers.
#include "admission.hpp"

#include <openssl/evp.h>

namespace yuxi::config::injector {
namespace {

using nlohmann::json;

constexpr std::string_view kApiVersion = "admission.k8s.io/v1";
constexpr std::string_view kReviewKind = "AdmissionReview";

// Reads the typed fields of one object; the first problem is kept and named.
class Reader {
  public:
    Reader(const json& object, std::string what) : object_(object), what_(std::move(what)) {}

    const std::string& error() const noexcept { return error_; }

    // A string field; `required` or else empty when absent. At most `max` bytes.
    std::string text(std::string_view key, bool required, std::size_t max = 253) {
        const json* f = find(key, required);
        if (f == nullptr) {
            return {};
        }
        if (!f->is_string()) {
            fail(key, "is not a string");
            return {};
        }
        const auto& s = f->get_ref<const std::string&>();
        if (s.size() > max || (required && s.empty())) {
            fail(key, "is empty or longer than " + std::to_string(max) + " bytes");
            return {};
        }
        return s;
    }

    const json* object(std::string_view key, bool required) {
        const json* f = find(key, required);
        if (f != nullptr && !f->is_object()) {
            fail(key, "is not an object");
            return nullptr;
        }
        return f;
    }

    bool boolean(std::string_view key) {
        const json* f = find(key, false);
        if (f != nullptr && !f->is_boolean()) {
            fail(key, "is not a boolean");
            return false;
        }
        return f != nullptr && f->get<bool>();
    }

  private:
    // The field; null when absent (an error if required) or JSON null.
    const json* find(std::string_view key, bool required) {
        if (!error_.empty()) {
            return nullptr;
        }
        const auto it = object_.find(key);
        if (it == object_.end() || it->is_null()) {
            if (required) {
                fail(key, "is missing");
            }
            return nullptr;
        }
        return &*it;
    }

    void fail(std::string_view key, const std::string& problem) {
        if (error_.empty()) {
            error_ = what_ + "." + std::string(key) + " " + problem;
        }
    }

    const json& object_;
    std::string what_;
    std::string error_;
};

bool printable(std::string_view s) {
    for (const char c : s) {
        if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7E) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool AdmissionRequest::is_pod() const noexcept {
    return group.empty() && version == "v1" && kind == "Pod" && resource == "pods" &&
           sub_resource.empty();
}

std::optional<std::string> nesting_problem(std::string_view text, std::size_t max_depth) {
    std::size_t depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                return "the JSON nests deeper than " + std::to_string(max_depth) + " levels";
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return std::nullopt;
}

std::string_view to_string(ReviewProblem p) noexcept {
    switch (p) {
        case ReviewProblem::none:
            return "none";
        case ReviewProblem::too_large:
            return "too_large";
        case ReviewProblem::too_deep:
            return "too_deep";
        case ReviewProblem::not_json:
            return "not_json";
        case ReviewProblem::not_a_review:
            return "not_a_review";
    }
    return "?";
}

Decoded<AdmissionRequest> decode_review(std::string_view body, std::size_t max_bytes,
                                        ReviewProblem* problem) {
    ReviewProblem ignored = ReviewProblem::none;
    ReviewProblem& verdict = problem != nullptr ? *problem : ignored;
    verdict = ReviewProblem::too_large;
    if (body.size() > max_bytes) {
        return refuse("the request is larger than " + std::to_string(max_bytes) + " bytes");
    }
    verdict = ReviewProblem::too_deep;
    if (auto p = nesting_problem(body, kMaxJsonDepth)) {
        return refuse(*p);
    }
    verdict = ReviewProblem::not_json;
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
        return refuse("the request body is not JSON");
    }
    verdict = ReviewProblem::not_a_review;
    if (!doc.is_object()) {
        return refuse("the request body is not an AdmissionReview (not a JSON object)");
    }
    Reader top(doc, "review");
    const std::string api_version = top.text("apiVersion", false);
    const std::string kind = top.text("kind", false);
    if (api_version != kApiVersion || kind != kReviewKind) {
        return refuse(
            "the request body is not an admission.k8s.io/v1 AdmissionReview "
            "(admissionReviewVersions must be [v1])");
    }
    const json* request = top.object("request", true);
    if (request == nullptr) {
        return refuse(top.error());
    }
    Reader r(*request, "request");
    AdmissionRequest out;
    out.uid = r.text("uid", true, kMaxUidBytes);
    out.operation = r.text("operation", true, 32);
    out.sub_resource = r.text("subResource", false);
    out.namespace_name = r.text("namespace", false);
    out.name = r.text("name", false);
    out.dry_run = r.boolean("dryRun");
    const json* gvk = r.object("kind", true);
    const json* resource = r.object("resource", true);
    const json* object = r.object("object", false);
    if (!r.error().empty()) {
        return refuse(r.error());
    }
    if (!printable(out.uid)) {
        return refuse("request.uid holds characters other than printable ASCII");
    }
    Reader k(*gvk, "request.kind");
    out.group = k.text("group", false);
    out.version = k.text("version", true, 63);
    out.kind = k.text("kind", true, 63);
    Reader res(*resource, "request.resource");
    out.resource = res.text("resource", true, 63);
    if (!k.error().empty() || !res.error().empty()) {
        return refuse(!k.error().empty() ? k.error() : res.error());
    }
    if (object != nullptr) {
        out.object = std::move(doc["request"]["object"]);
    }
    verdict = ReviewProblem::none;
    return out;
}

std::string encode_answer(const AdmissionAnswer& a) {
    json response = {{"uid", a.uid}, {"allowed", a.allowed}};
    if (a.allowed && a.patch) {
        response["patchType"] = "JSONPatch";
        response["patch"] = base64(a.patch->dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (!a.allowed) {
        response["status"] = {{"code", a.code}, {"message", a.message}};
    }
    if (!a.warnings.empty()) {
        response["warnings"] = a.warnings;
    }
    const json review = {
        {"apiVersion", kApiVersion}, {"kind", kReviewKind}, {"response", std::move(response)}};
    // Replacement, not an exception, for invalid UTF-8 that a message might quote.
    return review.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string base64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
    return out;
}

}  // namespace yuxi::config::injector
