#!/usr/bin/env node
// Validates the Kubernetes manifests of deploy/k8s, offline. (Over 600 lines: one
// invariant per function, all run over every rendered object.)
//
// For every kustomization (the overlays, base, and a fixture that applies the
// config-agent component to a foreign Deployment) it renders with `kubectl kustomize`
// (or `kustomize build`), then checks every object:
//
//  1. against the Kubernetes API schema of its kind (kubernetes-models, and
//     @kubernetes-models/prometheus-operator for ServiceMonitor and PrometheusRule); an
//     object of a kind neither package knows is an error, not a skip;
//  2. strictly: a field that the API type does not have is an error (the API server's
//     strict field validation would reject it; a lenient apply would drop it silently,
//     e.g. a misspelt restartPolicy). The field lists come from the packages' type
//     declarations (.d.ts);
//  3. against the invariants of the deployment (see checkPodTemplate and the cross-object
//     checks): the agent is a native sidecar with its probes, /dev/shm is a memory
//     emptyDir shared by the agent and every app container, the segment's group lets the
//     app read and only read it, containers are locked down, the network policy admits
//     port 9464 only from the monitoring namespace, references resolve.
//
// --self-test then breaks rendered objects in memory, one invariant at a time, and
// fails unless every broken copy is rejected.
//
// With --agent PATH, the agent also runs with every file-mode ConfigMap of its settings.
//
// deploy/k8s/injector (the admission webhook) is checked by injector_checks.mjs instead of
// the agent's invariants; --injector-dir DIR adds another rendering of it (the
// kustomization make-self-signed-cert.sh writes).
//
// Usage: node tests/deploy/validate.mjs [--self-test] [--kustomize CMD] [--agent PATH] [--injector-dir DIR]
//        node tests/deploy/validate.mjs --files MANIFEST.yaml...   (schema + strict only)
//        node tests/deploy/validate.mjs --pods PODS.yaml...        (+ the agent's invariants)
// Exit status: 0 valid, 1 invalid, 2 usage or environment error.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseAllDocuments } from "yaml";
import { checkInjector, INJECTOR_MUTATIONS } from "./injector_checks.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const nodeModules = path.join(here, "node_modules");

const AGENT = "yuxi-config-agent";
const AGENT_PORT = 9464;
const SHM = "/dev/shm";
const DEFAULT_SEGMENT = "yuxi-config";
const SIDECAR_LABEL = ["yuxi.dev/config-agent", "enabled"];
const MONITORING_NS = "monitoring";
// Secrets created out of band (deploy/k8s/base/secret.example.yaml): may be referenced
// without being rendered.
const EXTERNAL_SECRETS = new Set(["yuxi-config-secrets", "yuxi-api-secrets"]);

// ------------------------------------------------------------------------- rendering

function kustomizeCommand(arg) {
  if (arg) return arg.split(" ");
  for (const cmd of [["kubectl", "kustomize"], ["kustomize", "build"]]) {
    try {
      execFileSync(cmd[0], ["version", ...(cmd[0] === "kubectl" ? ["--client"] : [])], { stdio: "ignore" });
      return cmd;
    } catch { /* try the next one */ }
  }
  return null;
}

function render(cmd, dir) {
  const out = execFileSync(cmd[0], [...cmd.slice(1), dir], { encoding: "utf8", maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"] });
  return parseYaml(out, dir);
}

function parseYaml(text, where) {
  const objs = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${where}: ${doc.errors[0].message}`);
    const o = doc.toJS();
    if (o !== null && o !== undefined) objs.push(o);
  }
  return objs;
}

const clone = (o) => structuredClone(o);
const idOf = (o) => `${o?.kind}/${o?.metadata?.namespace ? o.metadata.namespace + "/" : ""}${o?.metadata?.name}`;

// ------------------------------------------------------------- schema (runtime models)

function modelLocation(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") {
    return { pkg: "@kubernetes-models/prometheus-operator", sub: `${group}/${version}/${kind}` };
  }
  if (group === "cert-manager.io") {
    return { pkg: "@kubernetes-models/cert-manager", sub: `${group}/${version}/${kind}` };
  }
  return { pkg: "kubernetes-models", sub: group ? `${group}/${version}/${kind}` : `${version}/${kind}` };
}

const modelCache = new Map();
async function modelClass(apiVersion, kind) {
  const loc = modelLocation(apiVersion, kind);
  if (!loc) return null;
  const key = `${loc.pkg}/${loc.sub}`;
  if (!modelCache.has(key)) {
    let cls = null;
    const file = path.join(nodeModules, loc.pkg, `${loc.sub}.mjs`);
    if (existsSync(file)) {
      const mod = await import(pathToFileURL(file).href);
      cls = mod[kind] ?? null;
    }
    modelCache.set(key, cls);
  }
  return modelCache.get(key);
}

async function schemaErrors(obj) {
  const cls = await modelClass(obj.apiVersion, obj.kind);
  if (!cls) return [`no schema for apiVersion ${obj.apiVersion} kind ${obj.kind} (unknown kind, or a CRD no installed package models)`];
  try {
    new cls(clone(obj)).validate();
    return [];
  } catch (e) {
    return String(e.message ?? e).split(/, (?=data)/).map((m) => `schema: ${m.replace(/^data/, "")}`);
  }
}

// ------------------------------------------ strict fields (from the .d.ts declarations)
// A small parser for the TypeScript that the model packages declare: interfaces, type
// aliases, object literal types, Array<T>, index signatures, unions and literals.

function tokenize(src) {
  src = src.replace(/\/\*[\s\S]*?\*\//g, " ").replace(/\/\/[^\n]*/g, " ");
  const toks = [];
  const re = /\s*(?:("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|([A-Za-z_$][\w$]*)|(-?\d+(?:\.\d+)?)|(\S))/gy;
  let m;
  while ((m = re.exec(src)) !== null) {
    if (m[0].trim() === "") break;
    if (m[1]) toks.push({ t: "str", v: m[1].slice(1, -1) });
    else if (m[2]) toks.push({ t: "id", v: m[2] });
    else if (m[3]) toks.push({ t: "num", v: m[3] });
    else toks.push({ t: "p", v: m[4] });
  }
  return toks;
}

class TypeParser {
  constructor(toks) { this.toks = toks; this.i = 0; }
  peek(k = 0) { return this.toks[this.i + k]; }
  next() { return this.toks[this.i++]; }
  is(v, k = 0) { const t = this.peek(k); return t && t.t !== "str" && t.v === v; }
  expect(v) {
    const t = this.next();
    if (!t || t.v !== v || t.t === "str") throw new Error(`d.ts parse: expected ${v}, got ${t?.v}`);
  }
  type() {
    if (this.is("|")) this.next();
    const opts = [this.primary()];
    while (this.is("|")) { this.next(); opts.push(this.primary()); }
    return opts.length === 1 ? opts[0] : { k: "union", opts };
  }
  primary() {
    const t = this.next();
    let ty;
    if (t.t === "str" || t.t === "num") ty = { k: "scalar" };
    else if (t.v === "{") ty = this.members();
    else if (t.v === "(") { ty = this.type(); this.expect(")"); }
    else if (t.t === "id") {
      if (["string", "number", "boolean", "null", "undefined", "true", "false", "bigint"].includes(t.v)) ty = { k: "scalar" };
      else if (["any", "unknown", "object", "never"].includes(t.v)) ty = { k: "any" };
      else if (t.v === "Array" || t.v === "ReadonlyArray") { this.expect("<"); ty = { k: "array", of: this.type() }; this.expect(">"); }
      else if (t.v === "Record") { this.expect("<"); this.type(); this.expect(","); ty = { k: "map", of: this.type() }; this.expect(">"); }
      else {
        ty = { k: "ref", name: t.v };
        if (this.is("<")) { this.skipAngle(); ty = { k: "any" }; }
      }
    } else throw new Error(`d.ts parse: unexpected ${t.v}`);
    while (this.is("[") && this.is("]", 1)) { this.next(); this.next(); ty = { k: "array", of: ty }; }
    return ty;
  }
  skipAngle() {
    let depth = 0;
    do { const t = this.next(); if (t.v === "<") depth++; else if (t.v === ">") depth--; } while (depth > 0);
  }
  members() { // after "{"
    const props = new Map();
    let index = null;
    while (!this.is("}")) {
      if (this.is("[")) {
        this.next(); this.next(); this.expect(":"); this.next(); this.expect("]"); this.expect(":");
        index = this.type();
      } else {
        const name = this.next().v;
        if (this.is("?")) this.next();
        if (this.is("(")) { // a method: skip to the end of the member
          let depth = 0;
          while (!(depth === 0 && (this.is(";") || this.is("}")))) {
            const t = this.next(); if ("({<".includes(t.v) && t.t === "p") depth++; else if (")}>".includes(t.v) && t.t === "p") depth--;
          }
        } else {
          this.expect(":");
          props.set(name, this.type());
        }
      }
      if (this.is(";") || this.is(",")) this.next();
    }
    this.expect("}");
    return { k: "object", props, index };
  }
}

const dtsCache = new Map();
function loadDts(file) {
  if (dtsCache.has(file)) return dtsCache.get(file);
  const toks = tokenize(readFileSync(file, "utf8"));
  const decls = new Map(), imports = new Map(), aliases = new Map();
  const p = new TypeParser(toks);
  while (p.i < toks.length) {
    if (p.is("import") && p.is("{", 1)) {
      p.next(); p.next();
      const names = [];
      while (!p.is("}")) {
        const a = p.next().v;
        if (p.is("as")) { p.next(); names.push([p.next().v, a]); } else names.push([a, a]);
        if (p.is(",")) p.next();
      }
      p.next(); p.expect("from");
      const spec = p.next().v;
      for (const [local, remote] of names) imports.set(local, { spec, remote });
    } else if (p.is("export") && p.is("interface", 1)) {
      p.next(); p.next();
      const name = p.next().v;
      const ext = [];
      if (p.is("extends")) { p.next(); while (!p.is("{")) { const t = p.next(); if (t.t === "id") ext.push(t.v); if (p.is("<")) p.skipAngle(); } }
      p.expect("{");
      const ty = p.members();
      ty.extends = ext;
      decls.set(name, ty);
    } else if (p.is("export") && p.is("declare", 1) && p.is("type", 2)) {
      p.next(); p.next(); p.next();
      const name = p.next().v;
      p.expect("=");
      decls.set(name, p.type());
    } else if (p.is("export") && p.is("{", 1)) {
      p.next(); p.next();
      while (!p.is("}")) {
        const a = p.next().v;
        if (p.is("as")) { p.next(); aliases.set(p.next().v, a); }
        if (p.is(",")) p.next();
      }
      p.next();
    } else if (p.is("{")) { // a class body or similar: skip it whole
      let depth = 0;
      do { const t = p.next(); if (t.t === "p" && t.v === "{") depth++; else if (t.t === "p" && t.v === "}") depth--; } while (depth > 0);
    } else p.next();
  }
  const r = { file, decls, imports, aliases };
  dtsCache.set(file, r);
  return r;
}

function resolveModule(fromFile, spec) {
  const base = spec.startsWith(".") ? path.resolve(path.dirname(fromFile), spec) : path.join(nodeModules, spec);
  for (const f of [`${base}.d.ts`, path.join(base, "index.d.ts")]) if (existsSync(f)) return f;
  return null;
}

function resolveRef(ctx, name, depth = 0) {
  if (depth > 8) return { k: "any" };
  if (ctx.decls.has(name)) return bindCtx(ctx.decls.get(name), ctx);
  if (ctx.aliases.has(name)) return resolveRef(ctx, ctx.aliases.get(name), depth + 1);
  if (ctx.imports.has(name)) {
    const { spec, remote } = ctx.imports.get(name);
    if (spec === "@kubernetes-models/base") return { k: "any" }; // ModelData, TypeMeta...
    const f = resolveModule(ctx.file, spec);
    if (!f) return { k: "any" };
    return resolveRef(loadDts(f), remote, depth + 1);
  }
  return { k: "any" };
}

function bindCtx(ty, ctx) { return { ...ty, ctx }; }

function strictErrors(value, ty, ctx, where, out) {
  if (!ty) return;
  if (ty.ctx) ctx = ty.ctx;
  switch (ty.k) {
    case "any": case "scalar": return;
    case "ref": return strictErrors(value, resolveRef(ctx, ty.name), ctx, where, out);
    case "array":
      if (Array.isArray(value)) value.forEach((v, i) => strictErrors(v, ty.of, ctx, `${where}[${i}]`, out));
      return;
    case "map":
      if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) strictErrors(v, ty.of, ctx, `${where}.${k}`, out);
      return;
    case "union": {
      if (!value || typeof value !== "object" || Array.isArray(value)) return;
      const objs = ty.opts.map((o) => (o.k === "ref" ? resolveRef(ctx, o.name) : o)).filter((o) => o.k === "object" || o.k === "any");
      if (objs.length === 1) return strictErrors(value, objs[0], ctx, where, out);
      return; // ambiguous: the schema check covers it
    }
    case "object": {
      if (!value || typeof value !== "object" || Array.isArray(value)) return;
      const known = new Set(ty.props.keys());
      if ((ty.extends ?? []).includes("TypeMeta")) { known.add("apiVersion"); known.add("kind"); }
      for (const [k, v] of Object.entries(value)) {
        if (ty.props.has(k)) strictErrors(v, ty.props.get(k), ctx, `${where}.${k}`, out);
        else if (known.has(k)) continue;
        else if (ty.index) strictErrors(v, ty.index, ctx, `${where}.${k}`, out);
        else out.push(`unknown field ${where}.${k}`);
      }
      return;
    }
    default: return;
  }
}

function strictCheck(obj) {
  const loc = modelLocation(obj.apiVersion, obj.kind);
  if (!loc) return [];
  const file = path.join(nodeModules, loc.pkg, `${loc.sub}.d.ts`);
  if (!existsSync(file)) return [];
  const ctx = loadDts(file);
  const ty = resolveRef(ctx, `I${obj.kind}`);
  if (ty.k !== "object") return [`strict: no declaration of I${obj.kind} in ${path.relative(nodeModules, file)}`];
  const out = [];
  strictErrors(obj, ty, ctx, "", out);
  return out.map((e) => `strict: ${e}`);
}

// ------------------------------------------------------------------------ invariants

const podKinds = new Set(["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"]);
const podSpecOf = (o) => o.spec?.template?.spec;
const podLabelsOf = (o) => o.spec?.template?.metadata?.labels ?? {};
const selectorMatches = (sel, labels) => !!sel && Object.entries(sel).every(([k, v]) => labels?.[k] === v);
const labelSelectorMatches = (ls, labels) =>
  !!ls && selectorMatches(ls.matchLabels ?? {}, labels) && (ls.matchExpressions ?? []).every((e) =>
    e.operator === "In" ? e.values.includes(labels[e.key]) :
    e.operator === "NotIn" ? !e.values.includes(labels[e.key]) :
    e.operator === "Exists" ? e.key in labels : !(e.key in labels));

function envValue(container, name, objs, ns) {
  for (const e of container.env ?? []) if (e.name === name) return e.value ?? null;
  for (const ef of [...(container.envFrom ?? [])].reverse()) {
    const ref = ef.configMapRef;
    if (!ref) continue;
    const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata?.name === ref.name && (o.metadata?.namespace ?? ns) === ns);
    const v = cm?.data?.[(ef.prefix ?? "") ? name.slice(ef.prefix.length) : name];
    if (v !== undefined) return v;
  }
  return undefined;
}

function portNumber(container, port) {
  if (typeof port === "number") return port;
  const p = (container.ports ?? []).find((x) => x.name === port);
  return p ? p.containerPort : undefined;
}

function effective(pod, c, field) {
  return c.securityContext?.[field] ?? pod.securityContext?.[field];
}

function checkSecurity(pod, c, where, errs) {
  const sc = c.securityContext ?? {};
  if (effective(pod, c, "runAsNonRoot") !== true) errs.push(`${where}: runAsNonRoot is not true (pod or container)`);
  const uid = effective(pod, c, "runAsUser");
  if (uid === undefined) errs.push(`${where}: no runAsUser (pod or container): the image's USER is not checkable`);
  else if (uid === 0) errs.push(`${where}: runAsUser 0`);
  if (sc.readOnlyRootFilesystem !== true) errs.push(`${where}: readOnlyRootFilesystem is not true`);
  if (sc.allowPrivilegeEscalation !== false) errs.push(`${where}: allowPrivilegeEscalation is not false`);
  if (sc.privileged === true) errs.push(`${where}: privileged`);
  if (!(sc.capabilities?.drop ?? []).includes("ALL")) errs.push(`${where}: capabilities.drop does not include ALL`);
  if ((sc.capabilities?.add ?? []).length) errs.push(`${where}: capabilities.add ${sc.capabilities.add}`);
  const seccomp = sc.seccompProfile?.type ?? pod.securityContext?.seccompProfile?.type;
  if (!["RuntimeDefault", "Localhost"].includes(seccomp)) errs.push(`${where}: seccompProfile is ${seccomp ?? "unset"}, expected RuntimeDefault`);
  for (const [kind, r] of [["requests", ["cpu", "memory"]], ["limits", ["memory"]]]) {
    for (const res of r) if (!c.resources?.[kind]?.[res]) errs.push(`${where}: no resources.${kind}.${res}`);
  }
  const paths = new Set();
  for (const m of c.volumeMounts ?? []) {
    if (paths.has(m.mountPath)) errs.push(`${where}: two volumes mounted at ${m.mountPath}`);
    paths.add(m.mountPath);
    if (!(pod.volumes ?? []).some((v) => v.name === m.name)) errs.push(`${where}: mounts volume ${m.name}, which the pod does not have`);
  }
}

function checkHttpProbe(probe, pathWanted, agent, httpPort, what, where, errs) {
  if (!probe) { errs.push(`${where}: the agent has no ${what}`); return; }
  if (probe.httpGet?.path !== pathWanted) errs.push(`${where}: the agent's ${what} is not an HTTP GET of ${pathWanted}`);
  const port = portNumber(agent, probe.httpGet?.port);
  if (port !== httpPort) errs.push(`${where}: the agent's ${what} probes port ${probe.httpGet?.port} (${port}), but the agent listens on ${httpPort}`);
}

// The invariants of a pod template that carries the agent. `appSecurity: false` checks the
// lockdown of the agent's container only (a pod the injector patched: how the team's own
// containers run is theirs to decide).
function checkAgentPod(o, objs, errs, { appSecurity = true } = {}) {
  const where = idOf(o);
  const pod = podSpecOf(o);
  const ns = o.metadata?.namespace;
  if (!pod) { errs.push(`${where}: no pod template`); return; }
  const inits = pod.initContainers ?? [];
  const agents = inits.filter((c) => c.name === AGENT);
  if ((pod.containers ?? []).some((c) => c.name === AGENT)) errs.push(`${where}: ${AGENT} is a regular container, not a native sidecar (initContainers with restartPolicy: Always)`);
  if (agents.length !== 1) { errs.push(`${where}: expected one initContainer ${AGENT}, found ${agents.length}`); return; }
  const agent = agents[0];
  const aw = `${where} initContainer ${AGENT}`;
  if (agent.restartPolicy !== "Always") errs.push(`${aw}: restartPolicy is ${agent.restartPolicy ?? "unset"}, not Always: not a native sidecar`);
  if (!/(^|\/)yuxi-config(:|@|$)/.test(agent.image ?? "")) errs.push(`${aw}: image ${agent.image} is not yuxi-config`);
  if (!selectorMatches(Object.fromEntries([SIDECAR_LABEL]), podLabelsOf(o))) errs.push(`${where}: pod template lacks the label ${SIDECAR_LABEL.join("=")}`);

  // HTTP: bound to an address the kubelet and Prometheus reach, probes on that port.
  const http = envValue(agent, "YUXI_CONFIG_HTTP", objs, ns) ?? "127.0.0.1:9464";
  const m = /^(.*):(\d+)$/.exec(http);
  const host = m?.[1], httpPort = m ? Number(m[2]) : NaN;
  if (!m || !["0.0.0.0", "[::]", "::", "$(POD_IP)"].includes(host)) errs.push(`${aw}: YUXI_CONFIG_HTTP=${http}: probes and Prometheus come from outside the pod's loopback; bind 0.0.0.0 (or [::], or $(POD_IP))`);
  if (httpPort !== AGENT_PORT) errs.push(`${aw}: YUXI_CONFIG_HTTP port ${httpPort}, expected ${AGENT_PORT}`);
  if (!(agent.ports ?? []).some((p) => p.containerPort === httpPort)) errs.push(`${aw}: port ${httpPort} not declared in ports`);
  checkHttpProbe(agent.startupProbe, "/readyz", agent, httpPort, "startupProbe", aw, errs);
  checkHttpProbe(agent.readinessProbe, "/readyz", agent, httpPort, "readinessProbe", aw, errs);
  checkHttpProbe(agent.livenessProbe, "/healthz", agent, httpPort, "livenessProbe", aw, errs);
  if (!agent.resources?.limits?.cpu) errs.push(`${aw}: no resources.limits.cpu`);

  // The segment volume.
  const shmMount = (c) => (c.volumeMounts ?? []).find((vm) => vm.mountPath === SHM);
  const am = shmMount(agent);
  if (!am) { errs.push(`${aw}: nothing mounted at ${SHM}`); return; }
  if (am.readOnly) errs.push(`${aw}: ${SHM} is mounted read-only: the agent writes the segment there`);
  const vol = (pod.volumes ?? []).find((v) => v.name === am.name);
  if (!vol?.emptyDir || vol.emptyDir.medium !== "Memory") errs.push(`${where}: volume ${am.name} at ${SHM} is not an emptyDir with medium: Memory`);
  const agentSegment = envValue(agent, "YUXI_CONFIG_SEGMENT", objs, ns) ?? DEFAULT_SEGMENT;

  // Identity: the segment is created 0640, owner the agent's uid, group the pod's fsGroup
  // (the emptyDir is setgid to it) or else the agent's gid.
  const agentUid = effective(pod, agent, "runAsUser");
  const agentGid = effective(pod, agent, "runAsGroup");
  if (agentGid === undefined) errs.push(`${aw}: no runAsGroup (pod or container)`);
  const segGid = pod.securityContext?.fsGroup ?? agentGid;

  const readers = pod.containers ?? [];
  if (!readers.length) errs.push(`${where}: no app container`);
  for (const c of readers) {
    const cw = `${where} container ${c.name}`;
    const cm = shmMount(c);
    if (!cm) errs.push(`${cw}: ${SHM} is not mounted: it cannot see the segment`);
    else if (cm.name !== am.name) errs.push(`${cw}: ${SHM} is volume ${cm.name}, the agent's is ${am.name}`);
    const seg = envValue(c, "YUXI_CONFIG_SEGMENT", objs, ns) ?? DEFAULT_SEGMENT;
    if (seg !== agentSegment) errs.push(`${cw}: YUXI_CONFIG_SEGMENT=${seg}, the agent writes ${agentSegment}`);
    const uid = effective(pod, c, "runAsUser");
    const groups = new Set([effective(pod, c, "runAsGroup"), pod.securityContext?.fsGroup, ...(pod.securityContext?.supplementalGroups ?? [])].filter((g) => g !== undefined));
    if (segGid === undefined || !groups.has(segGid)) errs.push(`${cw}: not in the segment's group ${segGid} (groups ${[...groups].join(",") || "none"}): it cannot read the 0640 segment`);
    if (uid !== undefined && uid === agentUid) errs.push(`${cw}: runs as the agent's uid ${uid}: it could write the segment (it must only read it)`);
  }
  for (const c of [...inits, ...readers]) {
    if (appSecurity || c === agent) checkSecurity(pod, c, `${where} ${inits.includes(c) ? "initContainer" : "container"} ${c.name}`, errs);
  }
}

function checkObjects(objs, profile) {
  const errs = [];
  const byKind = (k) => objs.filter((o) => o.kind === k);
  const deployments = byKind("Deployment");
  const labelled = deployments.filter((d) => d.metadata?.labels?.[SIDECAR_LABEL[0]] === SIDECAR_LABEL[1]);
  if (profile.injector) {
    errs.push(...checkInjector(objs, { envValue, labelSelectorMatches, selectorMatches, podSpecOf, podLabelsOf, idOf, portNumber }));
  } else if (!labelled.length) errs.push("no Deployment carries the agent");
  for (const d of labelled) checkAgentPod(d, objs, errs);

  // Every pod template: locked down; references resolve.
  for (const o of objs.filter((x) => podKinds.has(x.kind))) {
    const pod = podSpecOf(o);
    const ns = o.metadata?.namespace;
    if (!labelled.includes(o)) for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) checkSecurity(pod, c, `${idOf(o)} ${c.name}`, errs);
    if (pod.automountServiceAccountToken !== false) errs.push(`${idOf(o)}: automountServiceAccountToken is not false`);
    for (const v of pod.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName;
      if (claim && !objs.some((x) => x.kind === "PersistentVolumeClaim" && x.metadata.name === claim && x.metadata.namespace === ns)) errs.push(`${idOf(o)}: volume ${v.name} claims ${claim}, which is not rendered`);
    }
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) {
      for (const ef of c.envFrom ?? []) {
        if (ef.configMapRef && !ef.configMapRef.optional && !objs.some((x) => x.kind === "ConfigMap" && x.metadata.name === ef.configMapRef.name && x.metadata.namespace === ns)) errs.push(`${idOf(o)} ${c.name}: ConfigMap ${ef.configMapRef.name} is not rendered`);
        if (ef.secretRef && !ef.secretRef.optional && !EXTERNAL_SECRETS.has(ef.secretRef.name) && !objs.some((x) => x.kind === "Secret" && x.metadata.name === ef.secretRef.name)) errs.push(`${idOf(o)} ${c.name}: Secret ${ef.secretRef.name} is neither rendered nor a known external Secret`);
      }
    }
    const sa = pod.serviceAccountName;
    if (sa && !objs.some((x) => x.kind === "ServiceAccount" && x.metadata.name === sa)) errs.push(`${idOf(o)}: ServiceAccount ${sa} is not rendered`);
  }

  // Services select pods, and their target ports exist there.
  for (const s of byKind("Service")) {
    const pods = objs.filter((o) => podKinds.has(o.kind) && o.kind !== "Job" && selectorMatches(s.spec?.selector, podLabelsOf(o)) && o.metadata.namespace === s.metadata.namespace);
    if (!pods.length) { errs.push(`${idOf(s)}: selects no pod template`); continue; }
    for (const p of s.spec.ports ?? []) {
      if (typeof p.targetPort !== "string") continue;
      for (const o of pods) {
        const cs = [...(podSpecOf(o).initContainers ?? []), ...(podSpecOf(o).containers ?? [])];
        if (!cs.some((c) => (c.ports ?? []).some((cp) => cp.name === p.targetPort))) errs.push(`${idOf(s)}: targetPort ${p.targetPort} is no container port of ${idOf(o)}`);
      }
    }
  }
  for (const sm of byKind("ServiceMonitor")) {
    const svcs = byKind("Service").filter((s) => labelSelectorMatches(sm.spec?.selector, s.metadata?.labels ?? {}) && s.metadata.namespace === sm.metadata.namespace);
    if (!svcs.length) errs.push(`${idOf(sm)}: selects no Service`);
    for (const ep of sm.spec?.endpoints ?? []) {
      if (!svcs.some((s) => (s.spec.ports ?? []).some((p) => p.name === ep.port))) errs.push(`${idOf(sm)}: endpoint port ${ep.port} is no port of the selected Services`);
    }
  }
  for (const h of byKind("HorizontalPodAutoscaler")) {
    const t = h.spec?.scaleTargetRef;
    const d = deployments.find((x) => x.kind === t?.kind && x.metadata.name === t?.name && x.metadata.namespace === h.metadata.namespace);
    if (!d) { errs.push(`${idOf(h)}: scale target ${t?.kind}/${t?.name} is not rendered`); continue; }
    if (h.spec.minReplicas !== 3 || h.spec.maxReplicas !== 10) errs.push(`${idOf(h)}: replicas ${h.spec.minReplicas}-${h.spec.maxReplicas}, the seed's table says 3-10`);
    for (const m of h.spec.metrics ?? []) {
      if (m.type === "ContainerResource" && !(podSpecOf(d).containers ?? []).some((c) => c.name === m.containerResource.container)) errs.push(`${idOf(h)}: container ${m.containerResource.container} is not in ${idOf(d)}`);
    }
    if (d.spec.replicas !== undefined) errs.push(`${idOf(d)}: spec.replicas is set although ${idOf(h)} owns it`);
  }
  for (const p of byKind("PodDisruptionBudget")) {
    if (!deployments.some((d) => labelSelectorMatches(p.spec?.selector, podLabelsOf(d)))) errs.push(`${idOf(p)}: selects no Deployment's pods`);
  }

  // Network policy: the agent's pods are isolated both ways; 9464 only from monitoring;
  // PostgreSQL, Redis and DNS reachable.
  const nps = byKind("NetworkPolicy");
  for (const d of labelled) {
    const mine = nps.filter((n) => n.metadata.namespace === d.metadata.namespace && labelSelectorMatches(n.spec?.podSelector, podLabelsOf(d)));
    const types = new Set(mine.flatMap((n) => n.spec.policyTypes ?? []));
    if (!types.has("Ingress") || !types.has("Egress")) { errs.push(`${idOf(d)}: not isolated by a NetworkPolicy for both Ingress and Egress`); continue; }
    // A rule's port matches by number, by range, by the container port's name, or (no
    // port given) always.
    const agentPortNames = new Set((podSpecOf(d).initContainers ?? []).filter((c) => c.name === AGENT)
      .flatMap((c) => c.ports ?? []).filter((p) => p.containerPort === AGENT_PORT && p.name).map((p) => p.name));
    const coversPort = (ports, port, proto = "TCP") => !ports || ports.length === 0 || ports.some((p) => (p.protocol ?? "TCP") === proto &&
      (p.port === undefined || p.port === port || (typeof p.port === "number" && p.endPort && p.port <= port && port <= p.endPort) ||
       (port === AGENT_PORT && agentPortNames.has(p.port))));
    for (const n of mine) {
      for (const r of n.spec.ingress ?? []) {
        if (!coversPort(r.ports, AGENT_PORT)) continue;
        const from = r.from ?? [];
        const onlyMonitoring = from.length > 0 && from.every((f) => !f.ipBlock && !f.podSelector && f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === MONITORING_NS && !(f.namespaceSelector.matchExpressions ?? []).length);
        if (!onlyMonitoring) errs.push(`${idOf(n)}: an ingress rule admits port ${AGENT_PORT} from ${from.length ? JSON.stringify(from) : "anywhere"}: only the ${MONITORING_NS} namespace may scrape the agent`);
      }
    }
    if (!mine.some((n) => (n.spec.ingress ?? []).some((r) => coversPort(r.ports, AGENT_PORT)))) errs.push(`${idOf(d)}: no ingress rule lets Prometheus reach ${AGENT_PORT}`);
    for (const [port, what, proto] of [[5432, "PostgreSQL", "TCP"], [6379, "Redis", "TCP"], [53, "DNS", "UDP"]]) {
      if (!mine.some((n) => (n.spec.egress ?? []).some((r) => coversPort(r.ports, port, proto)))) errs.push(`${idOf(d)}: egress to ${what} (${proto} ${port}) is not allowed`);
    }
  }

  // The pre-deploy Job: schema apply, then migrate (docs/design.md, "Command line").
  const jobs = byKind("Job").filter((j) => j.metadata.name === "yuxi-config-migrate");
  if (profile.job) {
    if (jobs.length !== 1) errs.push("the migration Job yuxi-config-migrate is not rendered");
    for (const j of jobs) {
      const pod = podSpecOf(j);
      const first = (pod.initContainers ?? [])[0], main = (pod.containers ?? [])[0];
      const cmd = (c) => (c?.command ?? []).concat(c?.args ?? []);
      if (!first || cmd(first)[0] !== "/usr/local/bin/yuxi-configctl" || cmd(first).slice(1).join(" ") !== "schema apply") errs.push(`${idOf(j)}: the first step is not \`yuxi-configctl schema apply\``);
      const mc = cmd(main);
      if (mc[0] !== "/usr/local/bin/yuxi-configctl" || mc[1] !== "migrate" || !mc.includes("--config-file") || !mc.includes("--metadata")) errs.push(`${idOf(j)}: the main step is not \`yuxi-configctl migrate --config-file ... --metadata ...\``);
      if (first?.restartPolicy === "Always") errs.push(`${idOf(j)}: schema-apply must run to completion before migrate (not a sidecar)`);
      if (pod.restartPolicy !== "Never" && pod.restartPolicy !== "OnFailure") errs.push(`${idOf(j)}: restartPolicy ${pod.restartPolicy}`);
    }
  } else if (jobs.length) errs.push("the migration Job is rendered where it should not be");

  // Volumes of the seed (§5.3).
  const pvc = (n) => objs.find((o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === n);
  if (profile.sharedVolumes) {
    if (!pvc("yuxi-saves-pvc")?.spec.accessModes?.includes("ReadWriteMany")) errs.push("yuxi-saves-pvc is not ReadWriteMany");
    if (!pvc("yuxi-models-pvc")?.spec.accessModes?.includes("ReadOnlyMany")) errs.push("yuxi-models-pvc is not ReadOnlyMany");
  }

  // Profile: what each overlay promises.
  if (profile.namespace) {
    for (const o of objs) {
      if (["Namespace"].includes(o.kind)) continue;
      if (o.metadata?.namespace !== profile.namespace) errs.push(`${idOf(o)}: namespace ${o.metadata?.namespace}, expected ${profile.namespace}`);
    }
    const ns = objs.find((o) => o.kind === "Namespace" && o.metadata.name === profile.namespace);
    if (!ns) errs.push(`Namespace ${profile.namespace} is not rendered`);
    else if (ns.metadata.labels?.["pod-security.kubernetes.io/enforce"] !== "restricted") errs.push(`${idOf(ns)}: pod security standard \`restricted\` is not enforced`);
  }
  if (profile.hpa !== undefined) {
    const has = byKind("HorizontalPodAutoscaler").length > 0;
    if (has !== profile.hpa) errs.push(profile.hpa ? "no HorizontalPodAutoscaler" : "a HorizontalPodAutoscaler is rendered");
  }
  if (profile.replicas !== undefined) {
    for (const d of labelled) if (d.spec.replicas !== profile.replicas) errs.push(`${idOf(d)}: replicas ${d.spec.replicas}, expected ${profile.replicas}`);
  }
  if (profile.serviceType) {
    const s = objs.find((o) => o.kind === "Service" && o.metadata.name === "yuxi-api-service");
    if (s?.spec.type !== profile.serviceType) errs.push(`yuxi-api-service is ${s?.spec.type ?? "absent"}, expected ${profile.serviceType}`);
  }
  if (profile.apiResources) {
    const d = deployments.find((x) => x.metadata.name === "yuxi-api");
    const api = podSpecOf(d)?.containers?.find((c) => c.name === "api");
    const r = api?.resources?.requests ?? {};
    if (r.cpu !== "250m" || r.memory !== "512Mi") errs.push(`yuxi-api container api requests ${r.cpu}/${r.memory}, the seed's table says 250m/512Mi`);
  }
  if (profile.untouched) {
    for (const name of profile.untouched) {
      const d = deployments.find((x) => x.metadata.name === name);
      if (!d) errs.push(`Deployment ${name} is not rendered`);
      else if ((podSpecOf(d).initContainers ?? []).some((c) => c.name === AGENT)) errs.push(`${idOf(d)}: has no ${SIDECAR_LABEL.join("=")} label but got the agent`);
    }
  }
  return errs;
}

async function validateAll(objs, profile) {
  const errs = [];
  for (const o of objs) {
    if (!o.apiVersion || !o.kind || !o.metadata?.name) { errs.push(`an object without apiVersion, kind or metadata.name: ${JSON.stringify(o).slice(0, 120)}`); continue; }
    for (const e of await schemaErrors(o)) errs.push(`${idOf(o)}: ${e}`);
    for (const e of strictCheck(o)) errs.push(`${idOf(o)}: ${e}`);
  }
  return errs.concat(checkObjects(objs, profile));
}

// ------------------------------------------------------------------------- self-test

const find = (objs, kind, name) => objs.find((o) => o.kind === kind && (!name || o.metadata.name === name));
const apiPod = (objs) => podSpecOf(find(objs, "Deployment", "yuxi-api"));
const agentOf = (objs) => apiPod(objs).initContainers.find((c) => c.name === AGENT);
const apiOf = (objs) => apiPod(objs).containers.find((c) => c.name === "api");
const agentCm = (objs) => objs.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("yuxi-config-agent"));

const MUTATIONS = [
  ["agent without restartPolicy: Always", /not a native sidecar/, (o) => { delete agentOf(o).restartPolicy; }],
  ["agent as a regular container", /regular container|expected one initContainer/, (o) => { const p = apiPod(o); p.containers.push(p.initContainers.shift()); }],
  ["/dev/shm not in memory", /medium: Memory/, (o) => { apiPod(o).volumes.find((v) => v.emptyDir?.medium).emptyDir = {}; }],
  ["/dev/shm not mounted in the API", /cannot see the segment/, (o) => { const a = apiOf(o); a.volumeMounts = a.volumeMounts.filter((m) => m.mountPath !== SHM); }],
  ["/dev/shm read-only for the agent", /mounted read-only/, (o) => { agentOf(o).volumeMounts.find((m) => m.mountPath === SHM).readOnly = true; }],
  ["no readinessProbe", /no readinessProbe/, (o) => { delete agentOf(o).readinessProbe; }],
  ["no startupProbe", /no startupProbe/, (o) => { delete agentOf(o).startupProbe; }],
  ["startupProbe on /healthz", /startupProbe is not an HTTP GET of \/readyz/, (o) => { agentOf(o).startupProbe.httpGet.path = "/healthz"; }],
  ["livenessProbe on another port", /livenessProbe probes port/, (o) => { agentOf(o).livenessProbe.httpGet.port = 8080; }],
  ["agent bound to loopback", /YUXI_CONFIG_HTTP=127\.0\.0\.1/, (o) => { agentCm(o).data.YUXI_CONFIG_HTTP = "127.0.0.1:9464"; }],
  ["segment names differ", /YUXI_CONFIG_SEGMENT=other/, (o) => { apiOf(o).env.find((e) => e.name === "YUXI_CONFIG_SEGMENT").value = "other"; }],
  ["runAsNonRoot off", /runAsNonRoot is not true/, (o) => { apiPod(o).securityContext.runAsNonRoot = false; delete apiOf(o).securityContext.runAsNonRoot; }],
  ["writable root filesystem", /readOnlyRootFilesystem/, (o) => { apiOf(o).securityContext.readOnlyRootFilesystem = false; }],
  ["capabilities not dropped", /drop does not include ALL/, (o) => { agentOf(o).securityContext.capabilities.drop = []; }],
  ["privilege escalation", /allowPrivilegeEscalation/, (o) => { delete agentOf(o).securityContext.allowPrivilegeEscalation; }],
  ["API outside the segment's group", /not in the segment's group/, (o) => { const p = apiPod(o); delete p.securityContext.fsGroup; p.securityContext.runAsGroup = 3000; }],
  ["API as the agent's uid", /could write the segment/, (o) => { apiPod(o).securityContext.runAsUser = 10001; }],
  ["agent without memory limit", /no resources\.limits\.memory/, (o) => { delete agentOf(o).resources.limits.memory; }],
  ["metrics open to every pod", /only the monitoring namespace/, (o) => { find(o, "NetworkPolicy", "yuxi-api").spec.ingress.push({ from: [{ podSelector: {} }], ports: [{ port: 9464, protocol: "TCP" }] }); }],
  ["metrics by port name from anywhere", /admits port 9464 from anywhere/, (o) => { find(o, "NetworkPolicy", "yuxi-api").spec.ingress.push({ ports: [{ port: "yuxi-config" }] }); }],
  ["an ingress rule for all ports", /from anywhere/, (o) => { find(o, "NetworkPolicy", "yuxi-api").spec.ingress.push({}); }],
  ["no egress to PostgreSQL", /PostgreSQL/, (o) => { const n = find(o, "NetworkPolicy", "yuxi-api"); n.spec.egress = n.spec.egress.filter((r) => !(r.ports ?? []).some((p) => p.port === 5432)); }],
  ["a misspelt field", /unknown field .*restartpolicy/, (o) => { const a = agentOf(o); a.restartpolicy = a.restartPolicy; delete a.restartPolicy; }],
  ["a field at the wrong level", /unknown field .*spec\.template\.spec\.readOnlyRootFilesystem/, (o) => { apiPod(o).readOnlyRootFilesystem = true; }],
  ["a port that is not a number", /schema:.*containerPort/, (o) => { agentOf(o).ports[0].containerPort = "9464"; }],
  ["a Service port name typo", /targetPort yuxi-confg/, (o) => { find(o, "Service", "yuxi-api-config-metrics").spec.ports[0].targetPort = "yuxi-confg"; }],
  ["ServiceMonitor on a missing port", /endpoint port metrics/, (o) => { find(o, "ServiceMonitor").spec.endpoints[0].port = "metrics"; }],
  ["HPA beyond the seed's range", /replicas 3-20/, (o) => { find(o, "HorizontalPodAutoscaler").spec.maxReplicas = 20; }],
  ["a PVC left out", /claims yuxi-saves-pvc/, (o) => { o.splice(o.indexOf(find(o, "PersistentVolumeClaim", "yuxi-saves-pvc")), 1); }],
  ["migrate before schema apply", /schema apply/, (o) => { podSpecOf(find(o, "Job")).initContainers[0].command = ["/usr/local/bin/yuxi-configctl", "migrate"]; }],
  ["an unknown kind", /no schema for/, (o) => { o.push({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w", namespace: "yuxi" } }); }],
];

// ------------------------------------------------------- the agent takes the settings
// Runs the agent for a moment with a rendered ConfigMap as its environment (file mode
// only: database mode needs a server), on a private segment and a loopback port, in an
// empty directory (missing files are allowed at start). It must create its segment and
// stop cleanly on SIGTERM; a bad setting makes it exit 2 with the reason.
async function agentAccepts(agentBin, data) {
  const seg = `yuxi-validate-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const dir = mkdtempSync(path.join(os.tmpdir(), "yuxi-validate-"));
  const env = { PATH: process.env.PATH, ...data, YUXI_CONFIG_SEGMENT: seg, YUXI_CONFIG_HTTP: "127.0.0.1:0" };
  const child = spawn(agentBin, [], { cwd: dir, env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b) => { stderr += b; });
  const exited = new Promise((resolve) => {
    child.on("exit", (code, signal) => resolve(code ?? signal));
    child.on("error", (e) => { stderr += e.message; resolve("spawn error"); });
  });
  let created = false;
  for (let i = 0; i < 50 && child.exitCode === null && child.pid !== undefined; i++) {
    if (existsSync(`/dev/shm/${seg}`)) { created = true; break; }
    await new Promise((r) => setTimeout(r, 100));
  }
  if (child.exitCode === null && child.pid !== undefined) child.kill("SIGTERM");
  const code = await exited;
  for (const f of [`/dev/shm/${seg}`, `/dev/shm/${seg}.lock`, `/dev/shm/${seg}.waiters`]) rmSync(f, { force: true });
  rmSync(dir, { recursive: true, force: true });
  return code === 0 && created ? null : `exit ${code}, segment ${created ? "created" : "not created"}: ${stderr.trim().split("\n")[0]}`;
}

// ----------------------------------------------------------------------------- main

async function main() {
  const args = process.argv.slice(2);
  const selfTest = args.includes("--self-test");
  const ki = args.indexOf("--kustomize");
  const cmd = kustomizeCommand(ki >= 0 ? args[ki + 1] : null);
  const ai = args.indexOf("--agent");
  const agentBin = ai >= 0 ? path.resolve(args[ai + 1]) : null;
  const ii = args.indexOf("--injector-dir");  // another injector kustomization, e.g. the self-signed one
  const injectorDir = ii >= 0 ? path.resolve(args[ii + 1]) : null;
  if (!cmd) { console.error("validate: neither `kubectl kustomize` nor `kustomize build` is available"); return 2; }

  // --pods F...: Pods as the injector leaves them: the schema and strict checks, and the
  // invariants of a pod that carries the agent (its own lockdown, not the app's).
  const pi = args.indexOf("--pods");
  if (pi >= 0) {
    let bad = 0;
    for (const f of args.slice(pi + 1)) {
      for (const o of parseYaml(readFileSync(f, "utf8"), f)) {
        const errs = [...(await schemaErrors(o)), ...strictCheck(o)];
        const containers = [...(o.spec?.initContainers ?? []), ...(o.spec?.containers ?? [])];
        if (o.kind === "Pod" && containers.some((c) => c.name === AGENT)) {
          const asTemplate = { kind: "Pod", metadata: o.metadata, spec: { template: { metadata: o.metadata, spec: o.spec } } };
          checkAgentPod(asTemplate, [], errs, { appSecurity: false });
        }
        for (const e of errs) console.error(`${f}: ${idOf(o)}: ${e}`);
        if (errs.length) bad++;
        else console.log(`ok   ${f}: ${idOf(o)}`);
      }
    }
    return bad ? 1 : 0;
  }

  // --files F...: only the schema and strict checks, on the given manifests.
  const fi = args.indexOf("--files");
  if (fi >= 0) {
    let bad = 0;
    for (const f of args.slice(fi + 1)) {
      for (const o of parseYaml(readFileSync(f, "utf8"), f)) {
        const errs = [...(await schemaErrors(o)), ...strictCheck(o)];
        for (const e of errs) console.error(`${f}: ${idOf(o)}: ${e}`);
        if (errs.length) bad++;
      }
    }
    return bad ? 1 : 0;
  }

  const k8s = path.join(repo, "deploy/k8s");
  const overlays = readdirSync(path.join(k8s, "overlays")).sort();
  const targets = [
    ["deploy/k8s/base", { job: true, sharedVolumes: true, hpa: true, apiResources: true }],
    ["tests/deploy/fixtures/component-consumer", { untouched: ["plain"] }],
    ["deploy/k8s/injector", { injector: true }],
  ];
  if (injectorDir) targets.push([path.relative(repo, injectorDir), { injector: true }]);
  const profiles = {
    local: { namespace: "yuxi-local", hpa: false, replicas: 1, serviceType: "NodePort", job: false, apiResources: true },
    production: { namespace: "yuxi", hpa: true, job: true, sharedVolumes: true, apiResources: true, serviceType: "ClusterIP" },
  };
  for (const o of overlays) targets.push([`deploy/k8s/overlays/${o}`, profiles[o] ?? {}]);

  let failed = 0, passed = 0;
  const rendered = {};
  for (const [rel, profile] of targets) {
    let objs;
    try {
      objs = render(cmd, path.join(repo, rel));
    } catch (e) {
      console.error(`FAIL ${rel}: ${cmd.join(" ")} failed: ${String(e.stderr || e.message).trim()}`);
      failed++;
      continue;
    }
    rendered[rel] = objs;
    const errs = await validateAll(objs, profile);
    if (agentBin) {
      for (const cm of objs.filter((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("yuxi-config-agent"))) {
        if ((cm.data?.CONFIG_MODE ?? "file") !== "file") continue;
        const why = await agentAccepts(agentBin, cm.data ?? {});
        if (why) errs.push(`${idOf(cm)}: the agent does not accept these settings (${why})`);
        else console.log(`     ${idOf(cm)}: the agent starts with these settings`);
      }
    }
    if (errs.length) {
      failed++;
      console.error(`FAIL ${rel} (${objs.length} objects):`);
      for (const e of errs) console.error(`  ${e}`);
    } else {
      passed++;
      console.log(`ok   ${rel}: ${objs.length} objects valid (${[...new Set(objs.map((o) => o.kind))].join(", ")})`);
    }
  }

  // Files that no kustomization includes.
  for (const rel of ["deploy/k8s/base/secret.example.yaml"]) {
    const objs = parseYaml(readFileSync(path.join(repo, rel), "utf8"), rel);
    const errs = [];
    for (const o of objs) errs.push(...(await schemaErrors(o)), ...strictCheck(o));
    if (errs.length) { failed++; console.error(`FAIL ${rel}:\n  ${errs.join("\n  ")}`); }
    else { passed++; console.log(`ok   ${rel}: ${objs.length} object(s) valid`); }
  }

  if (selfTest) {
    const base = rendered["deploy/k8s/overlays/production"];
    if (!base) { console.error("FAIL self-test: the production overlay did not render"); failed++; }
    else {
      let missed = 0;
      for (const [desc, expect, mutate] of MUTATIONS) {
        const objs = clone(base);
        mutate(objs);
        const errs = await validateAll(objs, profiles.production);
        const hit = errs.find((e) => expect.test(e));
        if (hit) console.log(`  self-test ok: ${desc}: ${hit}`);
        else { missed++; console.error(`FAIL self-test: not detected: ${desc}${errs.length ? ` (other errors: ${errs.slice(0, 3).join(" | ")})` : ""}`); }
      }
      if (missed) failed++; else { passed++; console.log(`ok   self-test: all ${MUTATIONS.length} broken variants rejected`); }
    }
    const injector = rendered["deploy/k8s/injector"];
    if (!injector) { console.error("FAIL self-test: deploy/k8s/injector did not render"); failed++; }
    else {
      let missed = 0;
      for (const [desc, expect, mutate] of INJECTOR_MUTATIONS) {
        const objs = clone(injector);
        mutate(objs);
        const errs = await validateAll(objs, { injector: true });
        const hit = errs.find((e) => expect.test(e));
        if (hit) console.log(`  self-test ok: ${desc}: ${hit}`);
        else { missed++; console.error(`FAIL self-test: not detected: ${desc}${errs.length ? ` (other errors: ${errs.slice(0, 3).join(" | ")})` : ""}`); }
      }
      if (missed) failed++; else { passed++; console.log(`ok   self-test: all ${INJECTOR_MUTATIONS.length} broken injector variants rejected`); }
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

process.exitCode = await main().catch((e) => { console.error(`validate: ${e.stack ?? e}`); return 2; });
