// The invariants of deploy/k8s/injector (yuxi-config-injector, the admission webhook), for
// validate.mjs: the webhook reaches the Deployment through the Service on the port the
// injector listens on, with a certificate for that Service's name; the failure policy is
// explicit and the injector's own namespace can never depend on it; it survives a node
// drain; the sidecar's image is the injector's own. Each check has a broken variant in
// INJECTOR_MUTATIONS, which --self-test expects to be rejected.

export const INJECTOR = "yuxi-config-injector";

// The value of a flag in a container's args ("--name=value" or "--name value").
function flag(container, name) {
  const args = [...(container.command ?? []), ...(container.args ?? [])];
  for (let i = 0; i < args.length; i++) {
    if (args[i].startsWith(`--${name}=`)) return args[i].slice(name.length + 3);
    if (args[i] === `--${name}`) return args[i + 1];
  }
  return undefined;
}

const tagOf = (image) => (/:([^:/@]+)(@|$)/.exec(image ?? "") ?? [])[1];

function checkDeployment(dep, objs, errs, h) {
  const where = h.idOf(dep);
  const pod = h.podSpecOf(dep);
  const c = (pod?.containers ?? []).find((x) => (x.command ?? []).concat(x.args ?? []).some((a) => a.includes(INJECTOR)));
  if (!c) { errs.push(`${where}: no container runs ${INJECTOR}`); return null; }
  if ((dep.spec.replicas ?? 1) < 2) errs.push(`${where}: replicas ${dep.spec.replicas ?? 1}: the webhook's failurePolicy is Fail, so one replica down stops pod creation`);
  if (!(pod.topologySpreadConstraints ?? []).some((t) => t.topologyKey === "kubernetes.io/hostname") && !pod.affinity?.podAntiAffinity) errs.push(`${where}: replicas are not spread over nodes`);
  const pdbs = objs.filter((o) => o.kind === "PodDisruptionBudget" && h.labelSelectorMatches(o.spec?.selector, h.podLabelsOf(dep)));
  if (!pdbs.some((p) => (p.spec.minAvailable ?? 0) >= 1 || (p.spec.maxUnavailable !== undefined && p.spec.maxUnavailable < (dep.spec.replicas ?? 1)))) errs.push(`${where}: no PodDisruptionBudget keeps a replica through a drain`);

  const listen = flag(c, "listen") ?? "127.0.0.1:8443";
  const m = /^(.*):(\d+)$/.exec(listen);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !["0.0.0.0", "[::]", "::"].includes(m[1])) errs.push(`${where}: --listen=${listen}: the API server comes from outside the pod; bind 0.0.0.0 (or [::])`);
  if (!(c.ports ?? []).some((p) => p.containerPort === port)) errs.push(`${where}: --listen port ${port} is not declared in ports`);
  for (const [probe, path] of [["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]]) {
    const p = c[probe]?.httpGet;
    if (p?.path !== path) { errs.push(`${where}: ${probe} is not an HTTP GET of ${path}`); continue; }
    const pport = h.portNumber(c, p.port);
    if (pport === port && p.scheme !== "HTTPS") errs.push(`${where}: ${probe} probes the HTTPS port ${port} without scheme: HTTPS`);
    else if (pport !== port && pport !== Number((/:(\d+)$/.exec(flag(c, "metrics-listen") ?? "") ?? [])[1])) errs.push(`${where}: ${probe} probes port ${p.port}, where the injector does not listen`);
  }

  // The certificate files come from a mounted Secret.
  const secretOf = (file) => {
    const mount = (c.volumeMounts ?? []).find((vm) => file?.startsWith(vm.mountPath.replace(/\/?$/, "/")));
    return (pod.volumes ?? []).find((v) => v.name === mount?.name)?.secret?.secretName;
  };
  const secret = secretOf(flag(c, "tls-cert"));
  if (!secret || secret !== secretOf(flag(c, "tls-key"))) errs.push(`${where}: --tls-cert and --tls-key are not files of one mounted Secret`);

  const agentImage = h.envValue(c, "YUXI_INJECTOR_AGENT_IMAGE", objs, dep.metadata.namespace);
  if (agentImage !== undefined && agentImage !== null && tagOf(agentImage) !== tagOf(c.image)) errs.push(`${where}: YUXI_INJECTOR_AGENT_IMAGE=${agentImage} is not the injector's own version (${c.image})`);
  return { container: c, port, secret };
}

function checkWebhook(w, hook, objs, dep, errs, h) {
  const where = `${h.idOf(w)} webhook ${hook.name}`;
  if (!["Fail", "Ignore"].includes(hook.failurePolicy)) errs.push(`${where}: failurePolicy is not set explicitly (Fail or Ignore, and why, in the manifest)`);
  if (!["None", "NoneOnDryRun"].includes(hook.sideEffects)) errs.push(`${where}: sideEffects ${hook.sideEffects}: the injector has none`);
  if (!(hook.admissionReviewVersions ?? []).includes("v1")) errs.push(`${where}: admissionReviewVersions lacks v1, the only one the injector decodes`);
  if (hook.reinvocationPolicy !== "IfNeeded") errs.push(`${where}: reinvocationPolicy is not IfNeeded: a later webhook's new containers would never be seen`);
  if ((hook.timeoutSeconds ?? 10) > 10) errs.push(`${where}: timeoutSeconds ${hook.timeoutSeconds}: pod creation would wait that long for a stuck replica`);
  if (!(hook.rules ?? []).some((r) => r.operations?.includes("CREATE") && r.apiGroups?.includes("") && r.resources?.includes("pods"))) errs.push(`${where}: no rule sends pod CREATEs`);
  if ((hook.rules ?? []).some((r) => (r.resources ?? []).some((x) => x !== "pods"))) errs.push(`${where}: a rule sends something else than pods, which the injector refuses`);
  if (!hook.objectSelector) errs.push(`${where}: no objectSelector (pods labelled config.yuxi.dev/inject: "false" must bypass the webhook)`);

  const svc = hook.clientConfig?.service;
  if (!svc) { errs.push(`${where}: clientConfig is not a Service`); return; }
  if (svc.path !== "/mutate") errs.push(`${where}: clientConfig.service.path ${svc.path}, the injector serves /mutate`);
  const service = objs.find((o) => o.kind === "Service" && o.metadata.name === svc.name && o.metadata.namespace === svc.namespace);
  if (!service) errs.push(`${where}: Service ${svc.namespace}/${svc.name} is not rendered`);
  else if (dep) {
    const sp = (service.spec.ports ?? []).find((p) => p.port === (svc.port ?? 443));
    if (!sp) errs.push(`${where}: Service ${svc.name} has no port ${svc.port ?? 443}`);
    else if (h.portNumber(dep.container, sp.targetPort ?? sp.port) !== dep.port) errs.push(`${h.idOf(service)}: port ${sp.port} goes to ${sp.targetPort}, not to the injector's --listen port ${dep.port}`);
    if (!h.selectorMatches(service.spec.selector, h.podLabelsOf(dep.deployment))) errs.push(`${h.idOf(service)}: does not select the injector's pods`);
  }

  // The injector's own namespace (and kube-system) must never need the injector.
  for (const ns of [svc.namespace, "kube-system"]) {
    const obj = objs.find((o) => o.kind === "Namespace" && o.metadata.name === ns);
    const labels = { ...(obj?.metadata?.labels ?? {}), "kubernetes.io/metadata.name": ns };
    if (!hook.namespaceSelector || h.labelSelectorMatches(hook.namespaceSelector, labels)) errs.push(`${where}: the namespaceSelector selects the namespace ${ns}: its pods would need the injector to start (own namespace: never again once it is down)`);
  }

  // The API server's trust: a caBundle, or cert-manager's CA injection from a Certificate
  // for the Service's name whose Secret the Deployment mounts.
  const from = w.metadata?.annotations?.["cert-manager.io/inject-ca-from"];
  if (!hook.clientConfig.caBundle && !from) errs.push(`${where}: neither a caBundle nor cert-manager.io/inject-ca-from`);
  if (from) {
    const [ns, name] = from.split("/");
    const cert = objs.find((o) => o.kind === "Certificate" && o.metadata.name === name && o.metadata.namespace === ns);
    if (!cert) { errs.push(`${h.idOf(w)}: inject-ca-from ${from}: no such Certificate`); return; }
    const host = `${svc.name}.${svc.namespace}.svc`;
    if (!(cert.spec.dnsNames ?? []).includes(host)) errs.push(`${h.idOf(cert)}: dnsNames lack ${host}, the name the API server calls`);
    if (dep && cert.spec.secretName !== dep.secret) errs.push(`${h.idOf(cert)}: secretName ${cert.spec.secretName}, but the injector reads the Secret ${dep.secret}`);
    const issuer = cert.spec.issuerRef;
    if (!objs.some((o) => o.kind === (issuer?.kind ?? "Issuer") && o.metadata.name === issuer?.name)) errs.push(`${h.idOf(cert)}: issuer ${issuer?.kind}/${issuer?.name} is not rendered`);
  }
}

// Errors of the rendered injector kustomization `objs`; `h` holds validate.mjs's helpers.
export function checkInjector(objs, h) {
  const errs = [];
  const deps = objs.filter((o) => o.kind === "Deployment" && o.metadata.name === INJECTOR);
  if (deps.length !== 1) errs.push(`expected one Deployment ${INJECTOR}, found ${deps.length}`);
  const dep = deps[0] ? checkDeployment(deps[0], objs, errs, h) : null;
  if (dep) dep.deployment = deps[0];
  const hooks = objs.filter((o) => o.kind === "MutatingWebhookConfiguration");
  if (!hooks.length) errs.push("no MutatingWebhookConfiguration");
  for (const w of hooks) for (const hook of w.webhooks ?? []) checkWebhook(w, hook, objs, dep, errs, h);
  return errs;
}

const find = (o, kind, name) => o.find((x) => x.kind === kind && (!name || x.metadata.name === name));
const hookOf = (o) => find(o, "MutatingWebhookConfiguration").webhooks[0];
const injectorOf = (o) => find(o, "Deployment", INJECTOR).spec.template.spec.containers[0];

export const INJECTOR_MUTATIONS = [
  ["webhook without failurePolicy", /failurePolicy is not set/, (o) => { delete hookOf(o).failurePolicy; }],
  ["webhook for every namespace", /selects the namespace yuxi-config-system/, (o) => { hookOf(o).namespaceSelector = {}; }],
  ["webhook without objectSelector", /no objectSelector/, (o) => { delete hookOf(o).objectSelector; }],
  ["webhook on another path", /serves \/mutate/, (o) => { hookOf(o).clientConfig.service.path = "/inject"; }],
  ["webhook to a missing Service", /is not rendered/, (o) => { hookOf(o).clientConfig.service.name = "injector"; }],
  ["webhook never reinvoked", /reinvocationPolicy/, (o) => { hookOf(o).reinvocationPolicy = "Never"; }],
  ["webhook for deployments too", /something else than pods/, (o) => { hookOf(o).rules[0].resources.push("deployments"); }],
  ["one replica", /replicas 1/, (o) => { find(o, "Deployment", INJECTOR).spec.replicas = 1; }],
  ["no disruption budget", /PodDisruptionBudget/, (o) => { o.splice(o.indexOf(find(o, "PodDisruptionBudget")), 1); }],
  ["listening on loopback", /bind 0\.0\.0\.0/, (o) => { const c = injectorOf(o); c.args = c.args.map((a) => a.replace("--listen=0.0.0.0", "--listen=127.0.0.1")); }],
  ["Service to the metrics port", /not to the injector's --listen port/, (o) => { find(o, "Service", INJECTOR).spec.ports[0].targetPort = "metrics"; }],
  ["HTTPS probe without its scheme", /without scheme: HTTPS/, (o) => { delete injectorOf(o).readinessProbe.httpGet.scheme; }],
  ["certificate for another name", /dnsNames lack/, (o) => { find(o, "Certificate", INJECTOR).spec.dnsNames = ["injector.example.com"]; }],
  ["certificate into another Secret", /secretName/, (o) => { find(o, "Certificate", INJECTOR).spec.secretName = "other-tls"; }],
  ["no CA for the API server", /neither a caBundle/, (o) => { delete find(o, "MutatingWebhookConfiguration").metadata.annotations; }],
  ["the sidecar's image drifts", /not the injector's own version/, (o) => { const cm = o.find((x) => x.kind === "ConfigMap" && x.metadata.name.startsWith(INJECTOR)); cm.data.YUXI_INJECTOR_AGENT_IMAGE = "yuxi-config:0.0.9"; }],
];
