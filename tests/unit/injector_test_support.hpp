// Pods and AdmissionReviews for the injector's unit tests: Yuxi-Know's API pod (as
// deploy/k8s/base/deployment.yaml's template, in JSON), a review around any pod, and the
// answer's patch applied.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "patch.hpp"

namespace yuxi::config::injector::test {

using nlohmann::json;

// The API pod of deploy/k8s/base/deployment.yaml, annotated to be injected.
inline json api_pod() {
    return json::parse(R"({
      "apiVersion": "v1", "kind": "Pod",
      "metadata": {
        "generateName": "yuxi-api-7d9f-", "namespace": "yuxi",
        "labels": {"app": "yuxi-api", "app.kubernetes.io/name": "yuxi-api"},
        "annotations": {"kubectl.kubernetes.io/default-container": "api",
                        "config.yuxi.dev/inject": "true"}
      },
      "spec": {
        "serviceAccountName": "yuxi-api", "automountServiceAccountToken": false,
        "securityContext": {"runAsNonRoot": true, "runAsUser": 10002, "runAsGroup": 10001,
                            "fsGroup": 10001, "fsGroupChangePolicy": "OnRootMismatch",
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
          "name": "api", "image": "yuxi-know-api:latest",
          "ports": [{"name": "http", "containerPort": 5050, "protocol": "TCP"}],
          "env": [{"name": "LOG_LEVEL", "value": "INFO"}, {"name": "SAVE_DIR", "value": "/app/saves"}],
          "envFrom": [{"secretRef": {"name": "yuxi-api-secrets", "optional": true}}],
          "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                        "limits": {"cpu": "2", "memory": "2Gi"}},
          "securityContext": {"runAsNonRoot": true, "readOnlyRootFilesystem": true,
                              "allowPrivilegeEscalation": false,
                              "capabilities": {"drop": ["ALL"]}},
          "volumeMounts": [{"name": "saves", "mountPath": "/app/saves"},
                           {"name": "tmp", "mountPath": "/tmp"}]
        }],
        "volumes": [{"name": "saves", "persistentVolumeClaim": {"claimName": "yuxi-saves-pvc"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}]
      }
    })");
}

// A pod with only what a pod must have, annotated to be injected.
inline json bare_pod() {
    return json::parse(R"({
      "metadata": {"name": "bare", "annotations": {"config.yuxi.dev/inject": "true"}},
      "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    })");
}

inline json review_of(const json& pod, std::string uid = "3f0c9b6e-1a2b-4c5d-8e9f-0a1b2c3d4e5f") {
    return {{"apiVersion", "admission.k8s.io/v1"},
            {"kind", "AdmissionReview"},
            {"request",
             {{"uid", uid},
              {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
              {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
              {"operation", "CREATE"},
              {"namespace", "yuxi"},
              {"object", pod}}}};
}

inline const SidecarTemplate& tmpl() {
    return SidecarTemplate::embedded();
}

// The template's settings with the version's image, as the injector's flags leave them.
inline SidecarSettings defaults() {
    SidecarSettings s = tmpl().defaults();
    s.image = "yuxi-config:test";
    return s;
}

inline Injection inject_default(const json& pod) {
    return inject(pod, tmpl(), defaults());
}

// The pod after the injection's patch (the pod itself when there is none).
inline json patched(const json& pod, const Injection& r) {
    return r.decision == Decision::patched ? pod.patch(r.patch) : pod;
}

// The container named `name` in spec.`list`; null when absent.
inline const json* container(const json& pod, const char* list, std::string_view name) {
    const auto& spec = pod.at("spec");
    if (!spec.contains(list)) {
        return nullptr;
    }
    for (const json& c : spec.at(list)) {
        if (c.at("name") == name) {
            return &c;
        }
    }
    return nullptr;
}

inline std::string env_of(const json& c, std::string_view name) {
    for (const json& e : c.value("env", json::array())) {
        if (e.at("name") == name) {
            return e.value("value", "");
        }
    }
    return "<absent>";
}

}  // namespace yuxi::config::injector::test
