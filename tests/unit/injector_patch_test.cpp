// The injection decision and its patch: what an annotated pod gets (applied with
// nlohmann's json::patch and read back), each per-pod override, idempotence, the pods
// left alone, and the refusals a kubectl user reads.
#include <gtest/gtest.h>

#include "injector_test_support.hpp"

namespace yuxi::config::injector::test {
namespace {

TEST(InjectorTemplate, TheEmbeddedTemplateIsTheComponentsSidecar) {
    const SidecarTemplate& t = tmpl();
    EXPECT_EQ(t.agent.at("name"), "yuxi-config-agent");
    EXPECT_EQ(t.agent.at("restartPolicy"), "Always");
    EXPECT_EQ(t.volume.at("emptyDir").at("medium"), "Memory");
    EXPECT_EQ(t.pod_security_context.at("fsGroup"), 10001);
    const SidecarSettings s = t.defaults();
    EXPECT_EQ(s.env_value("YUXI_CONFIG_SEGMENT"), "yuxi-config");
    EXPECT_EQ(s.env_value("CONFIG_MODE"), "database");
    EXPECT_EQ(s.secret, "yuxi-config-secrets");
    EXPECT_EQ(s.resources, (Resources{"50m", "200m", "32Mi", "128Mi"}));
}

TEST(InjectorTemplate, AMalformedTemplateIsRefused) {
    EXPECT_FALSE(SidecarTemplate::parse("not json"));
    EXPECT_FALSE(SidecarTemplate::parse("[]"));
    json t = json::parse(sidecar_template_text());
    t.erase("volume");
    EXPECT_FALSE(SidecarTemplate::parse(t.dump()));
    t = json::parse(sidecar_template_text());
    t["agent"]["name"] = "other";
    EXPECT_FALSE(SidecarTemplate::parse(t.dump()));
    t = json::parse(sidecar_template_text());
    t["agentEnv"] = json::array({42});
    EXPECT_FALSE(SidecarTemplate::parse(t.dump()));
}

TEST(InjectorPatch, TheApiPodGetsTheWholeSidecar) {
    const json pod = api_pod();
    const Injection r = inject_default(pod);
    ASSERT_EQ(r.decision, Decision::patched) << r.message;
    EXPECT_EQ(r.reason, "patched");
    const json out = patched(pod, r);

    const json* agent = container(out, "initContainers", "yuxi-config-agent");
    ASSERT_NE(agent, nullptr);
    EXPECT_EQ(out["spec"]["initContainers"][0]["name"], "yuxi-config-agent");
    EXPECT_EQ(agent->at("image"), "yuxi-config:test");
    EXPECT_EQ(agent->at("restartPolicy"), "Always");
    EXPECT_EQ(agent->at("startupProbe").at("httpGet").at("path"), "/readyz");
    EXPECT_EQ(agent->at("livenessProbe").at("httpGet").at("path"), "/healthz");
    EXPECT_EQ(env_of(*agent, "CONFIG_MODE"), "database");
    EXPECT_EQ(env_of(*agent, "YUXI_CONFIG_HTTP"), "0.0.0.0:9464");
    EXPECT_EQ(agent->at("env")[0].at("name"), "POD_NAME");
    EXPECT_EQ(agent->at("envFrom"),
              json::parse(R"([{"secretRef":{"name":"yuxi-config-secrets","optional":true}}])"));

    const json* api = container(out, "containers", "api");
    ASSERT_NE(api, nullptr);
    EXPECT_EQ(env_of(*api, "YUXI_CONFIG_SEGMENT"), "yuxi-config");
    EXPECT_EQ(env_of(*api, "LOG_LEVEL"), "INFO");  // the app's own variable stays
    EXPECT_EQ(api->at("volumeMounts").back(),
              json::parse(R"({"name":"yuxi-config-shm","mountPath":"/dev/shm"})"));
    EXPECT_EQ(api->at("volumeMounts").size(), 3u);
    // The segment's volume, then the signing key's Secret, last.
    const json& volumes = out["spec"]["volumes"];
    ASSERT_EQ(volumes.size(), pod["spec"].value("volumes", json::array()).size() + 2);
    EXPECT_EQ(volumes[volumes.size() - 2], tmpl().volume);
    EXPECT_EQ(volumes.back(), tmpl().agent_volumes.at(0));
    EXPECT_EQ(volumes.back()["secret"]["secretName"], "yuxi-config-signing");
    EXPECT_EQ(out["spec"]["securityContext"], pod["spec"]["securityContext"]);
    EXPECT_EQ(out["metadata"]["labels"]["yuxi.dev/config-agent"], "enabled");
    EXPECT_EQ(out["metadata"]["annotations"]["config.yuxi.dev/status"], "injected");
    EXPECT_TRUE(r.warnings.empty());
}

TEST(InjectorPatch, TheSecondCallAddsNothing) {
    const json pod = api_pod();
    const json once = patched(pod, inject_default(pod));
    const Injection again = inject_default(once);
    EXPECT_EQ(again.decision, Decision::unchanged);
    EXPECT_EQ(again.reason, "already_injected");
}

TEST(InjectorPatch, APodWithTheAgentAlreadyIsLeftAlone) {
    for (const char* list : {"initContainers", "containers"}) {
        json pod = api_pod();
        pod["spec"][list].push_back({{"name", "yuxi-config-agent"}, {"image", "mine"}});
        const Injection r = inject_default(pod);
        EXPECT_EQ(r.decision, Decision::unchanged) << list;
        EXPECT_EQ(r.reason, "already_injected") << list;
    }
}

TEST(InjectorPatch, PodsThatDoNotAskAreLeftAlone) {
    json pod = api_pod();
    pod["metadata"]["annotations"].erase("config.yuxi.dev/inject");
    EXPECT_EQ(inject_default(pod).reason, "not_requested");
    pod["metadata"].erase("annotations");
    EXPECT_EQ(inject_default(pod).reason, "not_requested");
    pod["metadata"]["annotations"]["config.yuxi.dev/inject"] = "false";
    // An opted-out pod's other annotations are not checked: it did not ask for anything.
    pod["metadata"]["annotations"]["config.yuxi.dev/imgae"] = "x";
    const Injection r = inject_default(pod);
    EXPECT_EQ(r.decision, Decision::unchanged);
    EXPECT_EQ(r.reason, "opted_out");
}

TEST(InjectorPatch, SeveralContainersAllGetTheSegment) {
    json pod = bare_pod();
    pod["spec"]["containers"].push_back({{"name", "worker"}, {"image", "w"}});
    pod["spec"]["containers"].push_back(
        {{"name", "helper"}, {"image", "h"}, {"env", json::array()}});
    const json out = patched(pod, inject_default(pod));
    ASSERT_EQ(out["spec"]["containers"].size(), 3u);
    for (const json& c : out["spec"]["containers"]) {
        EXPECT_EQ(env_of(c, "YUXI_CONFIG_SEGMENT"), "yuxi-config") << c["name"];
        EXPECT_EQ(c["volumeMounts"],
                  json::parse(R"([{"name":"yuxi-config-shm","mountPath":"/dev/shm"}])"));
    }
    // A pod without a securityContext gets the segment's group, nothing else.
    EXPECT_EQ(out["spec"]["securityContext"],
              json::parse(R"({"fsGroup":10001,"fsGroupChangePolicy":"OnRootMismatch"})"));
}

TEST(InjectorPatch, ExistingVolumesInitContainersAndSecurityContextStay) {
    json pod = bare_pod();
    pod["spec"]["initContainers"] =
        json::parse(R"([{"name":"migrate","image":"m"},{"name":"seed","image":"s"}])");
    pod["spec"]["volumes"] = json::parse(R"([{"name":"data","emptyDir":{}}])");
    pod["spec"]["securityContext"] =
        json::parse(R"({"fsGroup":2000,"runAsUser":3000,"supplementalGroups":[4000]})");
    const json out = patched(pod, inject_default(pod));
    const json& inits = out["spec"]["initContainers"];
    ASSERT_EQ(inits.size(), 3u);
    EXPECT_EQ(inits[0]["name"], "yuxi-config-agent");  // first: app init containers may read it
    EXPECT_EQ(inits[1], pod["spec"]["initContainers"][0]);
    EXPECT_EQ(inits[2], pod["spec"]["initContainers"][1]);
    EXPECT_EQ(out["spec"]["volumes"][0], pod["spec"]["volumes"][0]);
    EXPECT_EQ(out["spec"]["volumes"].size(), 3u);  // the pod's, the segment's, the key's
    // The pod's own fsGroup stays: the segment takes that group, which the app has too.
    EXPECT_EQ(out["spec"]["securityContext"], pod["spec"]["securityContext"]);
}

TEST(InjectorPatch, AnnotationsOverrideEachSetting) {
    json pod = api_pod();
    auto& a = pod["metadata"]["annotations"];
    a["config.yuxi.dev/image"] = "registry.example.com/yuxi-config:0.2.0@sha256:abc";
    a["config.yuxi.dev/segment"] = "tenant-a.config";
    a["config.yuxi.dev/mode"] = "file";
    a["config.yuxi.dev/log-level"] = "debug";
    a["config.yuxi.dev/serve-degraded"] = "false";
    a["config.yuxi.dev/cpu-request"] = "100m";
    a["config.yuxi.dev/cpu-limit"] = "1";
    a["config.yuxi.dev/memory-request"] = "64Mi";
    a["config.yuxi.dev/memory-limit"] = "0.5Gi";
    const Injection r = inject_default(pod);
    ASSERT_EQ(r.decision, Decision::patched) << r.message;
    const json out = patched(pod, r);
    const json& agent = *container(out, "initContainers", "yuxi-config-agent");
    EXPECT_EQ(agent["image"], "registry.example.com/yuxi-config:0.2.0@sha256:abc");
    EXPECT_EQ(env_of(agent, "YUXI_CONFIG_SEGMENT"), "tenant-a.config");
    EXPECT_EQ(env_of(agent, "CONFIG_MODE"), "file");
    EXPECT_EQ(env_of(agent, "LOG_LEVEL"), "debug");
    EXPECT_EQ(env_of(agent, "YUXI_CONFIG_SERVE_DEGRADED"), "false");
    EXPECT_EQ(agent["resources"], json::parse(R"({"requests":{"cpu":"100m","memory":"64Mi"},
                                                  "limits":{"cpu":"1","memory":"0.5Gi"}})"));
    EXPECT_EQ(env_of(*container(out, "containers", "api"), "YUXI_CONFIG_SEGMENT"),
              "tenant-a.config");
}

TEST(InjectorPatch, TheRegularContainerFormForOlderClusters) {
    SidecarSettings s = defaults();
    s.native = false;
    const json pod = api_pod();
    const Injection r = inject(pod, tmpl(), s);
    ASSERT_EQ(r.decision, Decision::patched);
    const json out = patched(pod, r);
    EXPECT_EQ(container(out, "initContainers", "yuxi-config-agent"), nullptr);
    const json& cs = out["spec"]["containers"];
    ASSERT_EQ(cs.size(), 2u);
    EXPECT_EQ(cs[0]["name"], "api");  // the app stays the default container
    EXPECT_EQ(cs[1]["name"], "yuxi-config-agent");
    EXPECT_FALSE(cs[1].contains("restartPolicy"));
    EXPECT_EQ(cs[1]["volumeMounts"].size(), 2u);  // the segment and the signing key
    EXPECT_EQ(env_of(cs[1], "YUXI_CONFIG_SEGMENT"), "yuxi-config");
}

// Each refusal names the annotation and what would be right.
struct Refusal {
    const char* annotation;
    const char* value;
    const char* says;
};

class InjectorRefusesAnnotation : public ::testing::TestWithParam<Refusal> {};

TEST_P(InjectorRefusesAnnotation, WithAMessageNamingIt) {
    const Refusal& p = GetParam();
    json pod = api_pod();
    pod["metadata"]["annotations"][p.annotation] = p.value;
    const Injection r = inject_default(pod);
    EXPECT_EQ(r.decision, Decision::refused);
    EXPECT_EQ(r.reason, "annotation");
    EXPECT_NE(r.message.find(p.annotation), std::string::npos) << r.message;
    EXPECT_NE(r.message.find(p.says), std::string::npos) << r.message;
}

INSTANTIATE_TEST_SUITE_P(
    Values, InjectorRefusesAnnotation,
    ::testing::Values(
        Refusal{"config.yuxi.dev/inject", "yes", "must be \"true\" or \"false\""},
        Refusal{"config.yuxi.dev/inject", "True", "must be \"true\" or \"false\""},
        Refusal{"config.yuxi.dev/image", "", "is not an image reference"},
        Refusal{"config.yuxi.dev/image", "bad image", "letters, digits"},
        Refusal{"config.yuxi.dev/image", "repo:", "ends in ':'"},
        Refusal{"config.yuxi.dev/segment", "../etc", "is not a segment name"},
        Refusal{"config.yuxi.dev/segment", "a/b", "is not a segment name"},
        Refusal{"config.yuxi.dev/mode", "redis", "database or file"},
        Refusal{"config.yuxi.dev/log-level", "verbose", "trace, debug"},
        Refusal{"config.yuxi.dev/serve-degraded", "1", "\"true\" or \"false\""},
        Refusal{"config.yuxi.dev/cpu-request", "lots", "is not a Kubernetes quantity"},
        Refusal{"config.yuxi.dev/memory-limit", "-1Gi", "is not a Kubernetes quantity"},
        Refusal{"config.yuxi.dev/memory-limit", "12GB", "is not a Kubernetes quantity"},
        Refusal{"config.yuxi.dev/cpu-request", "500m", "above its limit 200m"},
        Refusal{"config.yuxi.dev/memory-limit", "16Mi", "request 32Mi is above its limit 16Mi"},
        Refusal{"config.yuxi.dev/imgae", "x", "is not an annotation of yuxi-config-injector"}));

TEST(InjectorPatch, AnAnnotationThatIsNotAStringIsRefused) {
    json pod = api_pod();
    pod["metadata"]["annotations"]["config.yuxi.dev/segment"] = 42;
    const Injection r = inject_default(pod);
    EXPECT_EQ(r.decision, Decision::refused);
    EXPECT_NE(r.message.find("must be a string"), std::string::npos);
}

TEST(InjectorPatch, AnEscapedValueStaysOneLine) {
    json pod = api_pod();
    pod["metadata"]["annotations"]["config.yuxi.dev/mode"] = "da\ntabase\"";
    const Injection r = inject_default(pod);
    EXPECT_EQ(r.message.find('\n'), std::string::npos) << r.message;
    EXPECT_NE(r.message.find(R"("da\x0atabase\"")"), std::string::npos) << r.message;
}

struct Conflict {
    const char* what;
    std::function<void(json&)> change;
    const char* says;
};

TEST(InjectorPatch, ConflictsThatWouldBreakThePodAreRefused) {
    const std::vector<Conflict> cases = {
        {"something else at /dev/shm",
         [](json& p) {
             p["spec"]["containers"][0]["volumeMounts"].push_back(
                 {{"name", "dshm"}, {"mountPath", "/dev/shm/"}});
         },
         "already mounts volume dshm at /dev/shm"},
        {"a volume named like the segment's",
         [](json& p) {
             p["spec"]["volumes"].push_back(
                 {{"name", "yuxi-config-shm"}, {"emptyDir", json::object()}});
         },
         "has a volume named yuxi-config-shm"},
        {"a volume named like the signing key's",
         [](json& p) {
             p["spec"]["volumes"].push_back(
                 {{"name", "yuxi-config-signing"}, {"emptyDir", json::object()}});
         },
         "has a volume named yuxi-config-signing"},
        {"another segment name",
         [](json& p) {
             p["spec"]["containers"][0]["env"].push_back(
                 {{"name", "YUXI_CONFIG_SEGMENT"}, {"value", "other"}});
         },
         "sets YUXI_CONFIG_SEGMENT to \"other\""},
        {"the segment from a reference",
         [](json& p) {
             p["spec"]["containers"][0]["env"].push_back(
                 {{"name", "YUXI_CONFIG_SEGMENT"},
                  {"valueFrom", {{"configMapKeyRef", {{"name", "x"}, {"key", "y"}}}}}});
         },
         "to a reference"},
        {"the agent's port",
         [](json& p) {
             p["spec"]["containers"][0]["ports"].push_back({{"containerPort", 9464}});
         },
         "declares port 9464"},
        {"windows",
         [](json& p) {
             p["spec"]["os"] = {{"name", "windows"}};
         },
         "Windows"},
    };
    for (const Conflict& c : cases) {
        json pod = api_pod();
        c.change(pod);
        const Injection r = inject_default(pod);
        EXPECT_EQ(r.decision, Decision::refused) << c.what;
        EXPECT_EQ(r.reason, "conflict") << c.what;
        EXPECT_NE(r.message.find(c.says), std::string::npos) << c.what << ": " << r.message;
    }
}

TEST(InjectorPatch, TheSameSegmentNameSetByTheAppIsFine) {
    json pod = api_pod();
    pod["spec"]["containers"][0]["env"].push_back(
        {{"name", "YUXI_CONFIG_SEGMENT"}, {"value", "yuxi-config"}});
    const json out = patched(pod, inject_default(pod));
    int count = 0;
    for (const json& e : out["spec"]["containers"][0]["env"]) {
        count += e["name"] == "YUXI_CONFIG_SEGMENT" ? 1 : 0;
    }
    EXPECT_EQ(count, 1);
}

TEST(InjectorPatch, AnAppRunningAsTheAgentsUidIsWarnedAbout) {
    json pod = api_pod();
    pod["spec"]["securityContext"]["runAsUser"] = 10001;
    const Injection r = inject_default(pod);
    ASSERT_EQ(r.decision, Decision::patched);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_NE(r.warnings[0].find("spec.containers[0] (api) runs as uid 10001"), std::string::npos)
        << r.warnings[0];
    EXPECT_LE(r.warnings[0].size(), 120u);  // the API server's advice for warnings
}

TEST(InjectorPatch, APodOnTheHostsNetworkIsWarnedAbout) {
    json pod = api_pod();
    pod["spec"]["hostNetwork"] = true;
    const Injection r = inject_default(pod);
    ASSERT_EQ(r.decision, Decision::patched);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_NE(r.warnings[0].find("hostNetwork"), std::string::npos);
    EXPECT_LE(r.warnings[0].size(), 120u);
}

TEST(InjectorPatch, ShapesThatAreNoPodAreRefusedNotCrashedOn) {
    const char* shapes[] = {
        R"(null)",
        R"([])",
        R"("pod")",
        R"({})",
        R"({"spec": []})",
        R"({"metadata": [], "spec": {"containers": [{"name": "a"}]}})",
        R"({"metadata": {"annotations": []}, "spec": {"containers": [{"name": "a"}]}})",
        R"({"metadata": {"annotations": {"config.yuxi.dev/inject": "true"}}, "spec": {"containers": []}})",
        R"({"metadata": {"annotations": {"config.yuxi.dev/inject": "true"}}, "spec": {"containers": [42]}})",
        R"({"metadata": {"annotations": {"config.yuxi.dev/inject": "true"}}, "spec": {"containers": [{"name": 7}]}})",
        R"({"metadata": {"annotations": {"config.yuxi.dev/inject": "true"}}, "spec": {"containers": [{"name": "a", "env": {}}]}})",
        R"({"metadata": {"annotations": {"config.yuxi.dev/inject": "true"}}, "spec": {"containers": [{"name": "a"}], "volumes": "x"}})",
        R"({"metadata": {"annotations": {"config.yuxi.dev/inject": "true"}}, "spec": {"containers": [{"name": "a"}], "securityContext": 5}})",
    };
    for (const char* s : shapes) {
        const Injection r = inject_default(json::parse(s));
        EXPECT_EQ(r.decision, Decision::refused) << s;
        EXPECT_EQ(r.reason, "malformed_pod") << s;
        EXPECT_FALSE(r.message.empty()) << s;
    }
}

TEST(InjectorPatch, NullListsAreTakenAsAbsent) {
    json pod = bare_pod();
    pod["spec"]["initContainers"] = nullptr;
    pod["spec"]["volumes"] = nullptr;
    pod["spec"]["containers"][0]["env"] = nullptr;
    pod["metadata"]["labels"] = nullptr;
    const Injection r = inject_default(pod);
    ASSERT_EQ(r.decision, Decision::patched) << r.message;
    const json out = patched(pod, r);
    EXPECT_EQ(out["spec"]["initContainers"].size(), 1u);
    EXPECT_EQ(out["spec"]["volumes"].size(), 2u);  // the segment's and the key's
    EXPECT_EQ(env_of(out["spec"]["containers"][0], "YUXI_CONFIG_SEGMENT"), "yuxi-config");
}

}  // namespace
}  // namespace yuxi::config::injector::test
