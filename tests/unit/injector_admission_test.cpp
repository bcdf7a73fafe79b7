// AdmissionReview decoding and answers: valid reviews, every hostile shape (not JSON,
// too large, too deep, wrong kinds and types), the webhook's answers and HTTP codes, and
// the committed fuzz seeds replayed through the same checks as the fuzz target.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "admission.hpp"
#include "injector_test_support.hpp"
#include "metrics.hpp"
#include "webhook.hpp"

#ifndef YUXI_ADMISSION_SEEDS
#error "YUXI_ADMISSION_SEEDS: the seed corpus directory"
#endif

namespace yuxi::config::injector::test {
namespace {

constexpr std::size_t kMax = 2 << 20;

std::string base64_decode(const std::string& in) {
    static const std::string kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int bits = 0;
    unsigned value = 0;
    for (const char c : in) {
        if (c == '=') {
            break;
        }
        value = (value << 6) | static_cast<unsigned>(kAlphabet.find(c));
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((value >> bits) & 0xFF);
        }
    }
    return out;
}

TEST(InjectorAdmission, DecodesAPodReview) {
    const json review = review_of(api_pod(), "uid-1");
    ReviewProblem problem = ReviewProblem::too_deep;
    const auto r = decode_review(review.dump(), kMax, &problem);
    ASSERT_TRUE(r) << r.reason();
    EXPECT_EQ(problem, ReviewProblem::none);
    EXPECT_EQ(r->uid, "uid-1");
    EXPECT_EQ(r->operation, "CREATE");
    EXPECT_EQ(r->namespace_name, "yuxi");
    EXPECT_TRUE(r->is_pod());
    EXPECT_FALSE(r->dry_run);
    EXPECT_EQ(r->object, api_pod());
}

struct Hostile {
    std::string what;
    std::string body;
    ReviewProblem problem;
};

TEST(InjectorAdmission, HostileBodiesAreRefusedWithTheirKind) {
    json no_uid = review_of(api_pod());
    no_uid["request"].erase("uid");
    json bad_uid = review_of(api_pod(), "a b");
    json v1beta1 = review_of(api_pod());
    v1beta1["apiVersion"] = "admission.k8s.io/v1beta1";
    json wrong_kind = review_of(api_pod());
    wrong_kind["kind"] = "Pod";
    json typed = review_of(api_pod());
    typed["request"]["kind"] = "Pod";
    json object_array = review_of(api_pod());
    object_array["request"]["object"] = json::array();
    json dry_run_text = review_of(api_pod());
    dry_run_text["request"]["dryRun"] = "yes";
    const std::vector<Hostile> cases = {
        {"empty", "", ReviewProblem::not_json},
        {"not JSON", "<xml/>", ReviewProblem::not_json},
        {"truncated", review_of(api_pod()).dump().substr(0, 100), ReviewProblem::not_json},
        {"invalid UTF-8", "{\"apiVersion\": \"\xff\xfe\"}", ReviewProblem::not_json},
        {"trailing garbage", review_of(api_pod()).dump() + "}", ReviewProblem::not_json},
        {"deep", std::string(100000, '[') + std::string(100000, ']'), ReviewProblem::too_deep},
        {"deep objects",
         [] {
             std::string s;
             for (int i = 0; i < 65; ++i) {
                 s += "{\"a\":";
             }
             return s + "1" + std::string(65, '}');
         }(),
         ReviewProblem::too_deep},
        {"too large", std::string(kMax + 1, ' '), ReviewProblem::too_large},
        {"an array", "[]", ReviewProblem::not_a_review},
        {"a number", "42", ReviewProblem::not_a_review},
        {"v1beta1", v1beta1.dump(), ReviewProblem::not_a_review},
        {"another kind", wrong_kind.dump(), ReviewProblem::not_a_review},
        {"no request", R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"})",
         ReviewProblem::not_a_review},
        {"no uid", no_uid.dump(), ReviewProblem::not_a_review},
        {"uid with a space", bad_uid.dump(), ReviewProblem::not_a_review},
        {"kind as a string", typed.dump(), ReviewProblem::not_a_review},
        {"object as an array", object_array.dump(), ReviewProblem::not_a_review},
        {"dryRun as a string", dry_run_text.dump(), ReviewProblem::not_a_review},
    };
    for (const Hostile& h : cases) {
        ReviewProblem problem = ReviewProblem::none;
        const auto r = decode_review(h.body, kMax, &problem);
        EXPECT_FALSE(r) << h.what;
        EXPECT_EQ(problem, h.problem) << h.what << ": " << r.reason();
        EXPECT_FALSE(r.reason().empty()) << h.what;
    }
}

TEST(InjectorAdmission, NestingIsCountedOutsideStringsOnly) {
    EXPECT_FALSE(nesting_problem(R"({"a": "[[[[[[[[[[[[[[[["})", 2));
    EXPECT_FALSE(nesting_problem(R"({"a": "\"[[[[[["})", 2));
    EXPECT_TRUE(nesting_problem(R"({"a": [[1]]})", 2));
    EXPECT_FALSE(nesting_problem(R"({"a": [1], "b": [2]})", 2));
    EXPECT_FALSE(nesting_problem(std::string(64, '[') + std::string(64, ']'), 64));
    EXPECT_TRUE(nesting_problem(std::string(65, '[') + std::string(65, ']'), 64));
}

TEST(InjectorAdmission, AnswersCarryTheUidThePatchAndTheRefusal) {
    AdmissionAnswer a;
    a.uid = "u-1";
    a.patch = json::parse(R"([{"op":"add","path":"/metadata/labels/x","value":"y"}])");
    a.warnings = {"careful"};
    const json out = json::parse(encode_answer(a));
    EXPECT_EQ(out["apiVersion"], "admission.k8s.io/v1");
    EXPECT_EQ(out["kind"], "AdmissionReview");
    EXPECT_EQ(out["response"]["uid"], "u-1");
    EXPECT_EQ(out["response"]["allowed"], true);
    EXPECT_EQ(out["response"]["patchType"], "JSONPatch");
    EXPECT_EQ(json::parse(base64_decode(out["response"]["patch"])), *a.patch);
    EXPECT_EQ(out["response"]["warnings"], json::array({"careful"}));

    AdmissionAnswer no;
    no.uid = "u-2";
    no.allowed = false;
    no.code = 400;
    no.message = "config.yuxi.dev/mode: \"x\" is not a mode";
    const json refused = json::parse(encode_answer(no));
    EXPECT_EQ(refused["response"]["allowed"], false);
    EXPECT_EQ(refused["response"]["status"]["code"], 400);
    EXPECT_EQ(refused["response"]["status"]["message"], no.message);
    EXPECT_FALSE(refused["response"].contains("patch"));
}

TEST(InjectorAdmission, Base64MatchesTheStandardAlphabet) {
    EXPECT_EQ(base64(""), "");
    EXPECT_EQ(base64("f"), "Zg==");
    EXPECT_EQ(base64("fo"), "Zm8=");
    EXPECT_EQ(base64("foo"), "Zm9v");
    EXPECT_EQ(base64("\xff\xfe\xfd"), "//79");
}

class InjectorWebhook : public ::testing::Test {
  protected:
    Metrics metrics_;
    Webhook webhook_{tmpl(), defaults(), metrics_, kMax};
};

TEST_F(InjectorWebhook, APodReviewGetsAPatchThatApplies) {
    const json pod = api_pod();
    const HttpAnswer a = webhook_.review(review_of(pod, "abc").dump());
    EXPECT_EQ(a.code, 200);
    EXPECT_EQ(a.content_type, "application/json");
    const json out = json::parse(a.body);
    EXPECT_EQ(out["response"]["uid"], "abc");
    const json patch = json::parse(base64_decode(out["response"]["patch"]));
    EXPECT_NE(container(pod.patch(patch), "initContainers", "yuxi-config-agent"), nullptr);
    EXPECT_EQ(metrics_.patches(), 1u);
}

TEST_F(InjectorWebhook, AReviewOfAnotherResourceIsRefusedWithTheRulesToFix) {
    json review = review_of(api_pod(), "d1");
    review["request"]["kind"] = {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
    review["request"]["resource"] = {
        {"group", "apps"}, {"version", "v1"}, {"resource", "deployments"}};
    const json out = json::parse(webhook_.review(review.dump()).body);
    EXPECT_EQ(out["response"]["uid"], "d1");
    EXPECT_EQ(out["response"]["allowed"], false);
    EXPECT_NE(out["response"]["status"]["message"].get<std::string>().find(
                  "mutates pods only, not apps/v1 Deployment (deployments)"),
              std::string::npos);

    json exec = review_of(api_pod(), "e1");
    exec["request"]["subResource"] = "exec";
    EXPECT_EQ(json::parse(webhook_.review(exec.dump()).body)["response"]["allowed"], false);
}

TEST_F(InjectorWebhook, OtherOperationsAreAllowedUnchanged) {
    json review = review_of(api_pod(), "u1");
    review["request"]["operation"] = "UPDATE";
    const json out = json::parse(webhook_.review(review.dump()).body);
    EXPECT_EQ(out["response"]["allowed"], true);
    EXPECT_FALSE(out["response"].contains("patch"));
}

TEST_F(InjectorWebhook, ABodyThatIsNoReviewGetsA4xxInWords) {
    const HttpAnswer a = webhook_.review("{");
    EXPECT_EQ(a.code, 400);
    EXPECT_EQ(a.body, "yuxi-config-injector: the request body is not JSON\n");
    EXPECT_EQ(webhook_.review(std::string(kMax + 1, ' ')).code, 413);
    const std::string text = metrics_.render();
    EXPECT_NE(text.find("yuxi_config_injector_invalid_requests_total{reason=\"not_json\"} 1"),
              std::string::npos);
    EXPECT_NE(text.find("yuxi_config_injector_invalid_requests_total{reason=\"too_large\"} 1"),
              std::string::npos);
}

TEST_F(InjectorWebhook, ACreateWithoutAnObjectIsRefusedAsMalformed) {
    json review = review_of(api_pod(), "n1");
    review["request"].erase("object");
    const json out = json::parse(webhook_.review(review.dump()).body);
    EXPECT_EQ(out["response"]["allowed"], false);
}

// The seeds of tests/fuzz/corpus/admission go through the fuzz target's checks here, on
// every build, so that a seed that once crashed stays a test.
TEST(InjectorSeeds, EverySeedGetsAnAnswerAndPatchesApply) {
    namespace fs = std::filesystem;
    std::size_t seeds = 0;
    std::size_t patched_count = 0;
    for (const auto& entry : fs::directory_iterator(YUXI_ADMISSION_SEEDS)) {
        std::ifstream in(entry.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        ++seeds;
        const auto r = decode_review(ss.str(), kMax);
        if (!r || !r->object.is_object()) {
            continue;
        }
        const Injection i = inject_default(r->object);
        if (i.decision == Decision::refused) {
            EXPECT_FALSE(i.message.empty()) << entry.path();
        }
        if (i.decision != Decision::patched) {
            continue;
        }
        ++patched_count;
        const json out = r->object.patch(i.patch);
        EXPECT_EQ(inject_default(out).reason, "already_injected") << entry.path();
    }
    EXPECT_GE(seeds, 12u);
    EXPECT_GE(patched_count, 3u);
}

}  // namespace
}  // namespace yuxi::config::injector::test
