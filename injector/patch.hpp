// Building the JSON patch that adds the sidecar to a pod: the decision (inject, leave
// alone, refuse), the mutated pod, and `nlohmann::json::diff` of the two (RFC 6902).
//
// The sidecar's shape is the kustomize component's (deploy/k8s/components/config-agent),
// taken out of its rendering into injector/sidecar_template.json and embedded at build
// time; tests/injector/sidecar_template.py --check fails when the two differ. What the
// injector adds to a pod that asks for it (config.yuxi.dev/inject: "true"):
//
//   - the agent, first among the initContainers with restartPolicy: Always (a native
//     sidecar), or last among the containers when --native-sidecar=false (clusters before
//     Kubernetes 1.29), with the component's probes, ports, resources and securityContext;
//     its environment is the component's ConfigMap written as literal variables (the
//     injector cannot create a ConfigMap in the pod's namespace), with the injector's
//     defaults and the pod's annotations over it, and the component's Secret reference;
//   - the memory-backed emptyDir for /dev/shm, mounted in the agent and every app container;
//   - YUXI_CONFIG_SEGMENT in every app container;
//   - the pod's fsGroup (and fsGroupChangePolicy) when the pod has none, so that the app
//     reads the agent's 0640 segment. Unlike the component it keeps a pod's own fsGroup
//     (the segment then takes that group, which the app has as well) and leaves the
//     pod's other securityContext fields alone: the agent's own container is locked down,
//     and a webhook must not change how a team's containers run;
//   - the component's pod labels, and config.yuxi.dev/status: injected.
//
// A pod that already has a container named yuxi-config-agent is left unchanged, so a
// second call (reinvocationPolicy: IfNeeded) adds nothing. What would give a broken pod
// is refused instead, with the reason: something else mounted at /dev/shm, a volume named
// like the segment's, YUXI_CONFIG_SEGMENT set to another name, a Windows pod.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "annotations.hpp"
#include "core/decoded.hpp"

namespace yuxi::config::injector {

inline constexpr std::string_view kAgentName = "yuxi-config-agent";

// The bytes of injector/sidecar_template.json (generated source).
std::string_view sidecar_template_text() noexcept;

struct SidecarTemplate {
    nlohmann::json agent;  // the container as the component renders it, ConfigMap aside
    std::vector<EnvVar> agent_env;
    nlohmann::json volume;         // the segment's
    nlohmann::json agent_volumes;  // array: the agent's others (the signing key's Secret)
    nlohmann::json pod_security_context;
    nlohmann::json pod_labels;
    nlohmann::json app_env;            // array: what every app container gets
    nlohmann::json app_volume_mounts;  // array

    // The template in `text`, or why it is not one.
    static Decoded<SidecarTemplate> parse(std::string_view text);
    // The embedded template; throws std::runtime_error if it is malformed (a defect of the
    // build, caught by the tests before it ships).
    static const SidecarTemplate& embedded();

    // The component's settings: its image (replaced by --agent-image), environment,
    // resources and Secret.
    SidecarSettings defaults() const;
};

enum class Decision {
    patched,    // allowed, with a patch
    unchanged,  // allowed as it is
    refused,    // allowed: false, with `message`
};

struct Injection {
    Decision decision = Decision::unchanged;
    // A fixed word for metrics and logs: patched; not_requested, opted_out,
    // already_injected; annotation, conflict, malformed_pod.
    std::string_view reason;
    nlohmann::json patch;  // RFC 6902 operations, when patched
    std::string message;   // when refused: what the user reads in kubectl
    std::vector<std::string> warnings;
};

// The decision for `pod` (the AdmissionReview's request.object) with `defaults` (the
// template's, with the injector's flags over them). Any `pod` gets a decision: a shape
// that is not a pod's is refused (malformed_pod). Only std::bad_alloc escapes.
Injection inject(const nlohmann::json& pod, const SidecarTemplate& t,
                 const SidecarSettings& defaults);

}  // namespace yuxi::config::injector
