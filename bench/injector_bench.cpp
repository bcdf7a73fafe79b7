// The admission webhook's cost as the API server sees it: yuxi-config-injector over
// loopback HTTPS (a CA made by `openssl`, TLS 1.3, certificate verified), the server on one
// core and the clients on the other.
//
//   latency   one kept-alive connection, one review at a time, the Yuxi-Know API pod as the
//             API server sends it after defaulting (~5 KB): p50, p90, p99, p99.9, max
//   floor     the same for GET /healthz: TLS and HTTP without the admission's work
//   handshake a new TLS connection for every review (what a client without keep-alive pays)
//   throughput  C kept-alive connections sending as fast as answers come, for D seconds:
//             reviews per second, and the server's CPU use, so reviews per second per core
//
//   build/dev/bin/injector_bench [--requests N] [--seconds D] [--connections C]
//
// Prints one table. Needs openssl; pins with taskset when there are two cores or more.
#include <sched.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "integration/injector_test_support.hpp"
#include "machine.hpp"

namespace {

using namespace yuxi::config::test;
using yuxi::config::bench::cpu_model;
using Clock = std::chrono::steady_clock;

// Yuxi-Know's API pod (deploy/k8s/base/deployment.yaml) as a ReplicaSet creates it, with
// the defaults the API server fills in before mutating admission.
constexpr const char* kPod = R"({
 "metadata": {"generateName": "yuxi-api-6d5f8c7b9-", "namespace": "yuxi",
  "labels": {"app": "yuxi-api", "app.kubernetes.io/name": "yuxi-api",
   "app.kubernetes.io/component": "api", "app.kubernetes.io/part-of": "yuxi-know",
   "pod-template-hash": "6d5f8c7b9"},
  "annotations": {"kubectl.kubernetes.io/default-container": "api", "config.yuxi.dev/inject": "true"},
  "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "yuxi-api-6d5f8c7b9",
   "uid": "0b7c1f4e-7c2a-4c55-9d0f-3f8e2a1b5c6d", "controller": true, "blockOwnerDeletion": true}],
  "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
   "time": "2024-05-01T12:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {
    "f:annotations": {".": {}, "f:kubectl.kubernetes.io/default-container": {}, "f:config.yuxi.dev/inject": {}},
    "f:generateName": {}, "f:labels": {".": {}, "f:app": {}, "f:pod-template-hash": {}},
    "f:ownerReferences": {".": {}, "k:{\"uid\":\"0b7c1f4e-7c2a-4c55-9d0f-3f8e2a1b5c6d\"}": {}}},
    "f:spec": {"f:containers": {"k:{\"name\":\"api\"}": {".": {}, "f:env": {".": {},
     "k:{\"name\":\"LOG_LEVEL\"}": {".": {}, "f:name": {}, "f:value": {}}}, "f:image": {},
     "f:name": {}, "f:ports": {".": {}, "k:{\"containerPort\":5050,\"protocol\":\"TCP\"}": {}},
     "f:resources": {".": {}, "f:limits": {}, "f:requests": {}}}}, "f:volumes": {".": {}}}}}]},
 "spec": {
  "volumes": [{"name": "saves", "persistentVolumeClaim": {"claimName": "yuxi-saves-pvc"}},
   {"name": "models", "persistentVolumeClaim": {"claimName": "yuxi-models-pvc", "readOnly": true}},
   {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
  "containers": [{"name": "api", "image": "yuxi-know-api:latest",
   "ports": [{"name": "http", "containerPort": 5050, "protocol": "TCP"}],
   "envFrom": [{"secretRef": {"name": "yuxi-api-secrets", "optional": true}}],
   "env": [{"name": "LOG_LEVEL", "value": "INFO"}, {"name": "SAVE_DIR", "value": "/app/saves"},
    {"name": "MODEL_DIR", "value": "/models"}],
   "resources": {"limits": {"cpu": "2", "memory": "2Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
   "volumeMounts": [{"name": "saves", "mountPath": "/app/saves"},
    {"name": "models", "readOnly": true, "mountPath": "/models"}, {"name": "tmp", "mountPath": "/tmp"}],
   "livenessProbe": {"httpGet": {"path": "/api/system/health", "port": "http", "scheme": "HTTP"},
    "timeoutSeconds": 5, "periodSeconds": 20, "successThreshold": 1, "failureThreshold": 3},
   "readinessProbe": {"httpGet": {"path": "/api/system/health", "port": "http", "scheme": "HTTP"},
    "timeoutSeconds": 3, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
   "startupProbe": {"httpGet": {"path": "/api/system/health", "port": "http", "scheme": "HTTP"},
    "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 60},
   "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
   "imagePullPolicy": "IfNotPresent",
   "securityContext": {"capabilities": {"drop": ["ALL"]}, "runAsNonRoot": true,
    "readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
    "seccompProfile": {"type": "RuntimeDefault"}}}],
  "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
  "serviceAccountName": "yuxi-api", "serviceAccount": "yuxi-api", "automountServiceAccountToken": false,
  "securityContext": {"runAsUser": 10002, "runAsGroup": 10001, "runAsNonRoot": true, "fsGroup": 10001,
   "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}},
  "schedulerName": "default-scheduler",
  "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
    "tolerationSeconds": 300},
   {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
    "tolerationSeconds": 300}],
  "priority": 0, "enableServiceLinks": false, "preemptionPolicy": "PreemptLowerPriority",
  "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
   "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": {"app": "yuxi-api"}}},
   {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
    "labelSelector": {"matchLabels": {"app": "yuxi-api"}}}]}})";

std::string review_body() {
    nlohmann::json review = {
        {"apiVersion", "admission.k8s.io/v1"},
        {"kind", "AdmissionReview"},
        {"request",
         {{"uid", "5d1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"},
          {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
          {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
          {"requestKind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
          {"operation", "CREATE"},
          {"namespace", "yuxi"},
          {"userInfo",
           {{"username", "system:serviceaccount:kube-system:replicaset-controller"},
            {"groups", {"system:serviceaccounts", "system:authenticated"}}}},
          {"object", nlohmann::json::parse(kPod)},
          {"oldObject", nullptr},
          {"dryRun", false},
          {"options", {{"apiVersion", "meta.k8s.io/v1"}, {"kind", "CreateOptions"}}}}}};
    return review.dump();
}

void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    (void)::sched_setaffinity(0, sizeof set, &set);
}

// CPU seconds (user + system) the process has used.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return 0;
    }
    std::istringstream fields(text.substr(close + 2));
    std::string f;
    double utime = 0;
    double stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) {
            utime = std::stod(f);
        } else if (i == 15) {
            stime = std::stod(f);
        }
    }
    return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

struct Percentiles {
    double p50, p90, p99, p999, max;
};

Percentiles percentiles(std::vector<double> us) {
    std::sort(us.begin(), us.end());
    const auto at = [&](double q) {
        return us[std::min(us.size() - 1,
                           static_cast<std::size_t>(q * static_cast<double>(us.size())))];
    };
    return {at(0.50), at(0.90), at(0.99), at(0.999), us.back()};
}

double micros(Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
}

// One kept-alive connection, `n` requests one after the other; each one's round trip (µs).
std::vector<double> sequential(std::uint16_t port, const fs::path& ca, std::string_view method,
                               std::string_view path, std::string_view body, int n) {
    TlsClient c(port, ca);
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n && c.connected(); ++i) {
        const auto t0 = Clock::now();
        const HttpResponse r = c.request(method, path, body);
        us.push_back(micros(Clock::now() - t0));
        if (r.status != 200) {
            std::cerr << "injector_bench: answer " << r.status << "\n";
            std::exit(1);
        }
    }
    return us;
}

// A new TLS connection for each of `n` reviews (connect, handshake, request, answer).
std::vector<double> reconnecting(std::uint16_t port, const fs::path& ca, std::string_view body,
                                 int n) {
    std::vector<double> us;
    for (int i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        TlsClient c(port, ca);
        if (!c.connected() || c.request("POST", "/mutate", body).status != 200) {
            std::cerr << "injector_bench: a review on a new connection failed\n";
            std::exit(1);
        }
        us.push_back(micros(Clock::now() - t0));
    }
    return us;
}

struct Throughput {
    double per_second;
    double server_cpu;  // cores the server used meanwhile
};

Throughput throughput(std::uint16_t port, const fs::path& ca, const std::string& body,
                      int connections, std::chrono::seconds duration, pid_t server) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> done{0};
    std::vector<std::thread> threads;
    const double cpu0 = cpu_seconds(server);
    const auto t0 = Clock::now();
    for (int i = 0; i < connections; ++i) {
        threads.emplace_back([&] {
            TlsClient c(port, ca);
            while (!stop.load(std::memory_order_relaxed) && c.connected()) {
                if (c.request("POST", "/mutate", body).status != 200) {
                    return;
                }
                done.fetch_add(1, std::memory_order_relaxed);
            }
        });
    }
    std::this_thread::sleep_for(duration);
    stop = true;
    for (auto& t : threads) {
        t.join();
    }
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    return {static_cast<double>(done.load()) / wall, (cpu_seconds(server) - cpu0) / wall};
}

void row(const char* what, const Percentiles& p, std::size_t n) {
    std::printf("%-34s %8zu %9.0f %9.0f %9.0f %9.0f %9.0f\n", what, n, p.p50, p.p90, p.p99, p.p999,
                p.max);
}

int arg(int argc, char** argv, const char* name, int fallback) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], name) == 0) {
            return std::max(1, std::atoi(argv[i + 1]));
        }
    }
    return fallback;
}

}  // namespace

int main(int argc, char** argv) {
    const int requests = arg(argc, argv, "--requests", 20000);
    const int seconds = arg(argc, argv, "--seconds", 10);
    const int connections = arg(argc, argv, "--connections", 4);
    std::signal(SIGPIPE, SIG_IGN);
    if (!have_program("openssl")) {
        std::cerr << "injector_bench: needs the openssl command\n";
        return 1;
    }
    const fs::path dir = temp_dir("injector-bench");
    if (!make_ca(dir, "ca") || !make_server_cert(dir, "ca", "server")) {
        std::cerr << "injector_bench: openssl failed\n";
        return 1;
    }
    const unsigned cores = std::thread::hardware_concurrency();
    const bool pinned = cores >= 2 && have_program("taskset");
    std::vector<std::string> prefix;
    if (pinned) {
        prefix = {"taskset", "-c", "0"};
        pin_to(1);  // the client's threads inherit it
    }
    InjectorProcess injector;
    if (!injector.start(YUXI_INJECTOR_BIN,
                        {"--tls-cert", (dir / "server.crt").string(), "--tls-key",
                         (dir / "server.key").string(), "--log-format", "json"},
                        dir, dir / "ca.crt", prefix)) {
        std::cerr << "injector_bench: the injector did not start:\n" << injector.log();
        return 1;
    }
    const std::string body = review_body();
    const fs::path ca = dir / "ca.crt";
    // Pid of the injector itself: taskset execs it, so the pid is the same.
    (void)sequential(injector.port(), ca, "POST", "/mutate", body, 500);  // warm-up

    const auto health = sequential(injector.port(), ca, "GET", "/healthz", {}, requests);
    const auto mutate = sequential(injector.port(), ca, "POST", "/mutate", body, requests);
    const auto fresh = reconnecting(injector.port(), ca, body, std::max(1, requests / 20));
    const Throughput t = throughput(injector.port(), ca, body, connections,
                                    std::chrono::seconds(seconds), injector.pid());
    injector.terminate();

    const Percentiles ph = percentiles(health);
    const Percentiles pm = percentiles(mutate);
    const Percentiles pf = percentiles(fresh);
    std::printf(
        "yuxi-config-injector over loopback HTTPS (TLS 1.3, ECDSA P-256), review %zu bytes\n",
        body.size());
    std::printf("machine: %s, %u cores; server %s, client %s\n\n", cpu_model().c_str(), cores,
                pinned ? "pinned to core 0" : "unpinned", pinned ? "on core 1" : "unpinned");
    std::printf("%-34s %8s %9s %9s %9s %9s %9s\n", "round trip (µs)", "n", "p50", "p90", "p99",
                "p99.9", "max");
    row("GET /healthz, kept alive (floor)", ph, health.size());
    row("POST /mutate, kept alive", pm, mutate.size());
    row("POST /mutate, new TLS connection", pf, fresh.size());
    std::printf("\nadmission work over the floor, p50: %.0f µs (%.1fx the /healthz round trip)\n",
                pm.p50 - ph.p50, pm.p50 / ph.p50);
    std::printf(
        "throughput, %d kept-alive connections, %d s: %.0f reviews/s; server CPU %.2f cores "
        "=> %.0f reviews/s per server core\n",
        connections, seconds, t.per_second, t.server_cpu,
        t.server_cpu > 0 ? t.per_second / t.server_cpu : 0.0);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return 0;
}
