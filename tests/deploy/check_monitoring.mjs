#!/usr/bin/env node
// The parts of the monitoring check that promtool does not do (check_monitoring.sh runs
// promtool first, then this):
//
//  * deploy/monitoring/prometheus-rules.yaml (PrometheusRule) carries exactly the groups
//    of yuxi-config.rules.yaml;
//  * every metric that the rules and the dashboard name is one the agent exports (the
//    list below is the contract with the HTTP server), so a typo cannot hide an alert;
//  * every alert has a promtool test that expects it to fire, and a runbook section in
//    docs/operations.md;
//  * grafana-dashboard.json is valid JSON with unique panel ids, a datasource variable,
//    and panels for what operators look at first; every query is written out as a
//    recording rule into OUT_RULES (with the dashboard variables filled in) so that
//    promtool can check its PromQL.
//
// Usage: node check_monitoring.mjs OUT_RULES
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { parse } from "yaml";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const mon = path.join(repo, "deploy/monitoring");

// What the agent's /metrics exposes (the HTTP server's contract).
const COUNTERS = ["updates_applied_total", "reconnects_total", "resyncs_total", "errors_total", "l2_snapshot_loads_total",
  "rejected_documents_total", "history_rewound_total", "rejected_values_total"];
const GAUGES = ["up", "ready", "revision", "entries", "segment_bytes", "segment_fill_ratio", "heartbeat_timestamp_seconds", "insecure", "snapshot_age_seconds",
  "source_up", "source_state", "relay_leader", "build_info", "serving_server_info", "rejected_keys"];
const HISTOGRAMS = ["apply_duration_seconds", "propagation_delay_seconds"];
const KNOWN = new Set([
  ...COUNTERS, ...GAUGES,
  ...HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]),
].map((m) => `yuxi_config_${m}`));

const errors = [];
const fail = (m) => errors.push(m);

const plain = parse(readFileSync(path.join(mon, "yuxi-config.rules.yaml"), "utf8"));
const crd = parse(readFileSync(path.join(mon, "prometheus-rules.yaml"), "utf8"));
const tests = parse(readFileSync(path.join(mon, "rules.test.yaml"), "utf8"));
const dashboard = JSON.parse(readFileSync(path.join(mon, "grafana-dashboard.json"), "utf8"));
const runbook = readFileSync(path.join(repo, "docs/operations.md"), "utf8");

// 1. The PrometheusRule is the plain file.
if (crd?.apiVersion !== "monitoring.coreos.com/v1" || crd?.kind !== "PrometheusRule") fail("prometheus-rules.yaml is not a monitoring.coreos.com/v1 PrometheusRule");
if (!isDeepStrictEqual(crd?.spec?.groups, plain?.groups)) {
  const a = JSON.stringify(crd?.spec?.groups ?? null), b = JSON.stringify(plain?.groups ?? null);
  let i = 0; while (i < a.length && a[i] === b[i]) i++;
  fail(`prometheus-rules.yaml spec.groups differ from yuxi-config.rules.yaml near: ${a.slice(Math.max(0, i - 60), i + 60)}`);
}

// 2. Metric names.
const metricNames = (expr) => [...expr.matchAll(/\byuxi_config_[a-z0-9_]+/g)].map((m) => m[0]);
const rules = (plain?.groups ?? []).flatMap((g) => g.rules ?? []);
for (const r of rules) for (const m of metricNames(r.expr)) if (!KNOWN.has(m)) fail(`rule ${r.alert ?? r.record}: unknown metric ${m}`);

// 3. Every alert: a firing test and a runbook section.
const slugs = new Set([...runbook.matchAll(/^#+\s+(.+)$/gm)].map((m) => m[1].trim().toLowerCase().replace(/[^\w\- ]/g, "").replace(/ /g, "-")));
const fired = new Set((tests?.tests ?? []).flatMap((t) => (t.alert_rule_test ?? []).filter((a) => (a.exp_alerts ?? []).length).map((a) => a.alertname)));
for (const r of rules.filter((x) => x.alert)) {
  if (!fired.has(r.alert)) fail(`alert ${r.alert}: no test in rules.test.yaml expects it to fire`);
  const anchor = /#([\w-]+)$/.exec(r.annotations?.runbook ?? "")?.[1];
  if (!anchor) fail(`alert ${r.alert}: no runbook annotation`);
  else if (!slugs.has(anchor)) fail(`alert ${r.alert}: runbook anchor #${anchor} is no heading of docs/operations.md`);
  if (!["warning", "critical"].includes(r.labels?.severity)) fail(`alert ${r.alert}: severity ${r.labels?.severity}`);
}
for (const n of fired) if (!rules.some((r) => r.alert === n)) fail(`rules.test.yaml tests alert ${n}, which no rule defines`);

// 4. The dashboard.
const panels = [];
const walk = (ps) => { for (const p of ps ?? []) { panels.push(p); walk(p.panels); } };
walk(dashboard.panels);
const ids = panels.map((p) => p.id);
if (new Set(ids).size !== ids.length) fail("grafana-dashboard.json: duplicate panel ids");
if (!dashboard.uid || !dashboard.title) fail("grafana-dashboard.json: no uid or title");
const vars = new Map((dashboard.templating?.list ?? []).map((v) => [v.name, v]));
if (vars.get("datasource")?.type !== "datasource") fail("grafana-dashboard.json: no datasource variable");
const fill = (e) => e.replace(/\$__rate_interval|\$__interval|\$\{__rate_interval\}/g, "5m")
  .replace(/\$\{?(namespace)\}?/g, "yuxi").replace(/\$\{?(job|pod)\}?/g, ".*");
const recording = [];
const exprs = [];
for (const p of panels.filter((x) => x.type !== "row")) {
  if (!p.title || !p.gridPos) fail(`panel ${p.id}: no title or gridPos`);
  if (!(p.targets ?? []).length) fail(`panel ${p.id} (${p.title}): no query`);
  for (const t of p.targets ?? []) {
    if (!t.expr) { fail(`panel ${p.id} (${p.title}) ${t.refId}: empty query`); continue; }
    exprs.push(t.expr);
    for (const m of metricNames(t.expr)) if (!KNOWN.has(m)) fail(`panel ${p.id} (${p.title}): unknown metric ${m}`);
    const leftover = /\$\{?\w+/.exec(fill(t.expr));
    if (leftover) fail(`panel ${p.id} (${p.title}): unknown variable ${leftover[0]}`);
    recording.push({ record: `dashboard:panel_${p.id}_${t.refId}`, expr: fill(t.expr) });
  }
}
for (const v of vars.values()) {
  const q = typeof v.query === "string" ? v.query : v.query?.query;
  if (v.type === "query" && q) for (const m of metricNames(q)) if (!KNOWN.has(m)) fail(`variable ${v.name}: unknown metric ${m}`);
}
const all = exprs.join("\n");
const wanted = [
  ["revision per pod", /yuxi_config_revision\{/],
  ["revision lag", /max[^\n]*yuxi_config_revision[^\n]*-[^\n]*yuxi_config_revision/],
  ["apply duration quantiles", /histogram_quantile\([^\n]*yuxi_config_apply_duration_seconds_bucket/],
  ["propagation delay quantiles", /histogram_quantile\([^\n]*yuxi_config_propagation_delay_seconds_bucket/],
  ["source up", /yuxi_config_source_up\{/],
  ["errors", /yuxi_config_errors_total\{/],
];
for (const [what, re] of wanted) if (!re.test(all)) fail(`grafana-dashboard.json: no panel for ${what}`);

writeFileSync(process.argv[2], JSON.stringify({ groups: [{ name: "dashboard-queries", rules: recording }] }, null, 1));
for (const e of errors) console.error(`FAIL: ${e}`);
if (!errors.length) console.log(`ok: ${rules.length} rules match the PrometheusRule, use known metrics, each alert tested and documented; dashboard: ${panels.length} panels, ${recording.length} queries`);
process.exitCode = errors.length ? 1 : 0;
