#!/usr/bin/env bash
# deploy/monitoring: `promtool check rules` and `promtool test rules` on the alerts, the
# PrometheusRule identical to the plain rules file, known metric names only, a test and a
# runbook section per alert, and the dashboard's JSON and PromQL (check_monitoring.mjs
# writes its queries as recording rules for promtool). promtool comes with Debian's
# `prometheus` package. Exit status: 0 pass, 1 fail, 77 skipped (no promtool).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mon=$(cd "$here/../../deploy/monitoring" && pwd)

promtool=${PROMTOOL:-$(command -v promtool || true)}
if [[ -z "$promtool" ]]; then
    echo "SKIP: promtool is not installed (Debian: apt-get install prometheus)" >&2
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/yuxi-monitoring.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$promtool" check rules "$mon/yuxi-config.rules.yaml"
# The PrometheusRule's spec, as a plain rules file, must pass too.
"$here/ensure_node_modules.sh"
(cd "$here" && node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
import { parse } from "yaml";
const crd = parse(readFileSync(process.argv[1], "utf8"));
writeFileSync(process.argv[2], JSON.stringify({ groups: crd?.spec?.groups ?? [] }));
' "$mon/prometheus-rules.yaml" "$tmp/crd.rules.json")
"$promtool" check rules "$tmp/crd.rules.json"
(cd "$mon" && "$promtool" test rules rules.test.yaml)
node "$here/check_monitoring.mjs" "$tmp/dashboard.rules.json"
"$promtool" check rules "$tmp/dashboard.rules.json"
echo "ok: deploy/monitoring"
