#!/usr/bin/env bash
# Renders every kustomization of deploy/k8s (base, overlays, the component on a foreign
# Deployment, the injector) with `kubectl kustomize`, validates every object against the Kubernetes
# schemas (kubernetes-models, strict: unknown fields are errors) and checks the
# deployment's invariants; then breaks copies on purpose and expects each to be rejected
# (--self-test). With the agent's path, the agent also runs with every file-mode
# ConfigMap of settings and must accept it. See validate.mjs.
#
#   tests/deploy/validate_k8s.sh [path/to/yuxi-config-agent]
#
# Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Components and replacements need kustomize v5 (kubectl >= 1.27). Debian's own
# kubernetes-client (1.20, kustomize v2) is too old: skip rather than fail on it.
kustomize=
if command -v kubectl >/dev/null 2>&1; then
    version=$(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"kustomizeVersion": *"v\{0,1\}\([0-9]*\).*/\1/p')
    if [[ "${version:-0}" -ge 5 ]]; then kustomize="kubectl kustomize"; fi
fi
if [[ -z "$kustomize" ]] && command -v kustomize >/dev/null 2>&1; then
    version=$(kustomize version 2>/dev/null | sed -n 's/^v\{0,1\}\([0-9]*\).*/\1/p' | head -n1)
    if [[ "${version:-0}" -ge 5 ]]; then kustomize="kustomize build"; fi
fi
if [[ -z "$kustomize" ]]; then
    echo "SKIP: needs kustomize v5: kubectl >= 1.27 (kubectl kustomize) or kustomize >= 5" >&2
    exit 77
fi
"$here/ensure_node_modules.sh"
agent=()
if [[ -n "${1:-}" ]]; then agent=(--agent "$1"); fi
exec node "$here/validate.mjs" --self-test --kustomize "$kustomize" "${agent[@]}"
