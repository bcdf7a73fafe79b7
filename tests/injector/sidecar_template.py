#!/usr/bin/python3
"""Derives injector/sidecar_template.json from deploy/k8s/components/config-agent.

The kustomize component is the one source of the sidecar's shape. This renders it (with
`kubectl kustomize`) onto a bare Deployment and takes out what it added: the agent's
container, its environment (the component's ConfigMap, which the injector writes as
literal variables since it cannot create the ConfigMap), the segment's volume and the agent's others (the signing key), the pod's
securityContext and labels, and what each app container gets. The injector embeds the
result at build time.

  tests/injector/sidecar_template.py --check   exit 1 if the committed file is stale
  tests/injector/sidecar_template.py --write   rewrite it (after changing the component)

Exit status: 0 up to date (or written), 1 stale, 77 kustomize v5 missing.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
COMPONENT = os.path.join(REPO, "deploy", "k8s", "components", "config-agent")
TEMPLATE = os.path.join(REPO, "injector", "sidecar_template.json")
AGENT = "yuxi-config-agent"
SHM = "/dev/shm"

BARE = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "bare", "labels": {"yuxi.dev/config-agent": "enabled"}},
    "spec": {
        "selector": {"matchLabels": {"app": "bare"}},
        "template": {
            "metadata": {"labels": {"app": "bare"}},
            "spec": {"containers": [{"name": "app", "image": "app"}]},
        },
    },
}


def kustomize_command(arg):
    if arg:
        return arg.split()
    for cmd in (["kubectl", "kustomize"], ["kustomize", "build"]):
        if shutil.which(cmd[0]):
            return cmd
    return None


def render(cmd, objects):
    """Renders `objects` with the component applied; returns the parsed objects."""
    with tempfile.TemporaryDirectory(prefix="yuxi-template-") as d:
        with open(os.path.join(d, "objects.yaml"), "w") as f:
            yaml.safe_dump_all(objects, f)
        with open(os.path.join(d, "kustomization.yaml"), "w") as f:
            # kustomize takes relative paths only.
            yaml.safe_dump({"resources": ["objects.yaml"],
                            "components": [os.path.relpath(COMPONENT, d)]}, f)
        out = subprocess.run(cmd + [d], check=True, capture_output=True, text=True).stdout
    return [o for o in yaml.safe_load_all(out) if o]


def derive(cmd):
    objs = render(cmd, [BARE])
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(AGENT))
    dep = next(o for o in objs if o["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    agents = [c for c in pod.get("initContainers", []) if c["name"] == AGENT]
    if len(agents) != 1:
        raise SystemExit(f"sidecar_template: the component did not add one initContainer {AGENT}")
    agent = agents[0]
    # The ConfigMap becomes literal variables; every other source stays as it is.
    agent["envFrom"] = [e for e in agent.get("envFrom", [])
                        if e.get("configMapRef", {}).get("name") != cm["metadata"]["name"]]
    mount = next(m for m in agent["volumeMounts"] if m["mountPath"] == SHM)
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    # The agent's other volumes (the signing key's Secret): added to the pod with it.
    mounted = {m["name"] for m in agent["volumeMounts"]}
    agent_volumes = [v for v in pod["volumes"] if v["name"] in mounted and v["name"] != mount["name"]]
    app = pod["containers"][0]
    labels = dict(dep["spec"]["template"]["metadata"].get("labels", {}))
    labels.pop("app", None)
    return {
        "generatedBy": "tests/injector/sidecar_template.py --write, from "
                       "deploy/k8s/components/config-agent: do not edit",
        "agent": agent,
        "agentEnv": [{"name": k, "value": v} for k, v in sorted(cm.get("data", {}).items())],
        "volume": volume,
        "agentVolumes": agent_volumes,
        "podSecurityContext": pod.get("securityContext", {}),
        "podLabels": labels,
        "appEnv": app.get("env", []),
        "appVolumeMounts": app.get("volumeMounts", []),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--write", action="store_true")
    ap.add_argument("--kustomize", help="the kustomize command, e.g. 'kubectl kustomize'")
    args = ap.parse_args()
    cmd = kustomize_command(args.kustomize)
    if cmd is None:
        print("SKIP: needs kubectl (kustomize v5) or kustomize", file=sys.stderr)
        return 77
    text = json.dumps(derive(cmd), indent=2, sort_keys=True) + "\n"
    if args.write:
        with open(TEMPLATE, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(TEMPLATE, REPO)}")
        return 0
    with open(TEMPLATE) as f:
        committed = f.read()
    if committed != text:
        print("injector/sidecar_template.json does not match deploy/k8s/components/config-agent:\n"
              "run tests/injector/sidecar_template.py --write and commit the result", file=sys.stderr)
        import difflib
        sys.stderr.writelines(difflib.unified_diff(committed.splitlines(True), text.splitlines(True),
                                                   "committed", "from the component"))
        return 1
    print("injector/sidecar_template.json matches deploy/k8s/components/config-agent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
