// libFuzzer target for the injector's outside input: whatever reaches the webhook's port
// goes through the AdmissionReview decoder and, for a pod, the patch builder. Beyond not
// crashing, the promises: a refusal has a reason; the answer encodes to JSON; a patch
// applies to the pod it was made for; and the patched pod, reviewed again, is left
// unchanged (reinvocation adds nothing).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "admission.hpp"
#include "patch.hpp"

namespace {

using namespace yuxi::config::injector;
using nlohmann::json;

constexpr std::size_t kMaxBytes = 2 << 20;

const SidecarSettings& settings() {
    static const SidecarSettings s = [] {
        SidecarSettings d = SidecarTemplate::embedded().defaults();
        d.image = "yuxi-config:fuzz";
        return d;
    }();
    return s;
}

void check_answer(const AdmissionRequest& r, const Injection& i) {
    AdmissionAnswer a;
    a.uid = r.uid;
    a.allowed = i.decision != Decision::refused;
    a.message = i.message;
    a.warnings = i.warnings;
    if (i.decision == Decision::patched) {
        a.patch = i.patch;
    }
    if (json::parse(encode_answer(a), nullptr, false).is_discarded()) {
        std::abort();  // the answer must always be JSON
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto r = decode_review(text, kMaxBytes);
    if (!r) {
        if (r.reason().empty()) {
            std::abort();
        }
        return 0;
    }
    const Injection i = inject(r->object, SidecarTemplate::embedded(), settings());
    if (i.decision == Decision::refused && i.message.empty()) {
        std::abort();
    }
    check_answer(*r, i);
    if (i.decision != Decision::patched) {
        return 0;
    }
    json out;
    try {
        out = r->object.patch(i.patch);
    } catch (const std::exception&) {
        std::abort();  // our own patch does not apply to the pod it was made for
    }
    if (inject(out, SidecarTemplate::embedded(), settings()).reason != "already_injected") {
        std::abort();  // a second review would add a second sidecar
    }
    return 0;
}
