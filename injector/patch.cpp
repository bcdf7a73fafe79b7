// The injection decision and its RFC 6902 patch, from the embedded sidecar template.
#include "patch.hpp"

#include <algorithm>
#include <cstdint>
#include <optional>

namespace yuxi::config::injector {
namespace {

using nlohmann::json;

const json* member(const json& object, std::string_view key) {
    if (!object.is_object()) {
        return nullptr;
    }
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

// The member if it is of `type`; null if absent or of another type.
const json* typed(const json& object, std::string_view key, json::value_t type) {
    const json* m = member(object, key);
    return m != nullptr && m->type() == type ? m : nullptr;
}

std::string_view string_or(const json* j, std::string_view fallback = {}) {
    return j != nullptr && j->is_string() ? std::string_view(j->get_ref<const std::string&>())
                                          : fallback;
}

Injection unchanged(std::string_view reason) {
    Injection r;
    r.decision = Decision::unchanged;
    r.reason = reason;
    return r;
}

Injection refused(std::string_view reason, std::string message) {
    Injection r;
    r.decision = Decision::refused;
    r.reason = reason;
    r.message = std::move(message);
    return r;
}

// "spec.containers[1] (api)", for messages.
std::string where(std::string_view list, std::size_t i, const json& c) {
    return "spec." + std::string(list) + "[" + std::to_string(i) + "] (" +
           std::string(string_or(member(c, "name"), "?")) + ")";
}

std::string_view trim_slashes(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') {
        path.remove_suffix(1);
    }
    return path;
}

// What about `pod` is not a pod's shape, as far as the injection reads and writes it.
std::optional<std::string> shape_problem(const json& pod) {
    if (!pod.is_object()) {
        return "the object is not a pod (not a JSON object)";
    }
    const json* meta = member(pod, "metadata");
    if (meta != nullptr && !meta->is_object()) {
        return "the pod's metadata is not an object";
    }
    for (const char* field : {"labels", "annotations"}) {
        const json* m = meta != nullptr ? member(*meta, field) : nullptr;
        if (m != nullptr && !m->is_object() && !m->is_null()) {
            return "the pod's metadata." + std::string(field) + " is not an object";
        }
    }
    const json* spec = typed(pod, "spec", json::value_t::object);
    if (spec == nullptr) {
        return "the pod has no spec";
    }
    const json* containers = typed(*spec, "containers", json::value_t::array);
    if (containers == nullptr || containers->empty()) {
        return "the pod has no spec.containers";
    }
    for (const char* list : {"containers", "initContainers", "volumes"}) {
        const json* l = member(*spec, list);
        if (l == nullptr || l->is_null()) {
            continue;
        }
        if (!l->is_array()) {
            return "the pod's spec." + std::string(list) + " is not a list";
        }
        for (std::size_t i = 0; i < l->size(); ++i) {
            const json& c = (*l)[i];
            if (!c.is_object() || typed(c, "name", json::value_t::string) == nullptr) {
                return "the pod's spec." + std::string(list) + "[" + std::to_string(i) +
                       "] is not an object with a name";
            }
            for (const char* sub : {"env", "volumeMounts", "ports"}) {
                const json* s = member(c, sub);
                if (s != nullptr && !s->is_null() && !s->is_array()) {
                    return where(list, i, c) + "." + sub + " is not a list";
                }
            }
        }
    }
    const json* sc = member(*spec, "securityContext");
    if (sc != nullptr && !sc->is_object() && !sc->is_null()) {
        return "the pod's spec.securityContext is not an object";
    }
    return std::nullopt;
}

bool has_agent(const json& spec) {
    for (const char* list : {"containers", "initContainers"}) {
        if (const json* l = typed(spec, list, json::value_t::array)) {
            for (const json& c : *l) {
                if (string_or(member(c, "name")) == kAgentName) {
                    return true;
                }
            }
        }
    }
    return false;
}

// Every element of the array member `list` of `object`; none if it is absent or null.
const json& items(const json& object, std::string_view list) {
    static const json kNone = json::array();
    const json* l = typed(object, list, json::value_t::array);
    return l != nullptr ? *l : kNone;
}

// What in the pod would clash with the sidecar (a pod that would not start, or would
// read another segment than the agent writes), as a message for the user.
std::optional<std::string> conflict(const json& spec, const SidecarTemplate& t,
                                    std::string_view segment) {
    const json* os = member(spec, "os");
    if (os != nullptr && string_or(member(*os, "name")) == "windows") {
        return "the pod runs on Windows (spec.os.name), and the yuxi-config agent is a Linux "
               "program: remove config.yuxi.dev/inject";
    }
    std::vector<std::string_view> ours = {string_or(member(t.volume, "name"))};
    for (const json& v : t.agent_volumes) {
        ours.push_back(string_or(member(v, "name")));
    }
    for (const json& v : items(spec, "volumes")) {
        const std::string_view name = string_or(member(v, "name"));
        if (std::find(ours.begin(), ours.end(), name) != ours.end()) {
            return "the pod has a volume named " + std::string(name) + " but no " +
                   std::string(kAgentName) +
                   " container: remove that volume (the injector adds it with the agent), or "
                   "add the whole sidecar yourself and remove config.yuxi.dev/inject";
        }
    }
    std::vector<std::int64_t> agent_ports;
    for (const json& p : items(t.agent, "ports")) {
        if (const json* n = member(p, "containerPort"); n != nullptr && n->is_number_integer()) {
            agent_ports.push_back(n->get<std::int64_t>());
        }
    }
    for (const char* list : {"containers", "initContainers"}) {
        const json& cs = items(spec, list);
        for (std::size_t i = 0; i < cs.size(); ++i) {
            for (const json& p : items(cs[i], "ports")) {
                const json* n = member(p, "containerPort");
                if (n != nullptr && n->is_number_integer() &&
                    std::find(agent_ports.begin(), agent_ports.end(), n->get<std::int64_t>()) !=
                        agent_ports.end()) {
                    return where(list, i, cs[i]) + " declares port " + n->dump() +
                           ", the agent's probe and metrics port: containers of a pod share "
                           "ports, so the agent could not listen";
                }
            }
        }
    }
    const json& containers = items(spec, "containers");
    for (std::size_t i = 0; i < containers.size(); ++i) {
        const json& c = containers[i];
        for (const json& want : t.app_volume_mounts) {
            const std::string_view path = trim_slashes(string_or(member(want, "mountPath")));
            for (const json& m : items(c, "volumeMounts")) {
                if (trim_slashes(string_or(member(m, "mountPath"))) == path) {
                    return where("containers", i, c) + " already mounts volume " +
                           std::string(string_or(member(m, "name"), "?")) + " at " +
                           std::string(path) +
                           ", where the segment lives: remove that mount (the sidecar gives "
                           "every container a memory-backed " +
                           std::string(path) + ")";
                }
            }
        }
        for (const json& e : items(c, "env")) {
            if (string_or(member(e, "name")) != kSegmentVar) {
                continue;
            }
            const json* value = member(e, "value");
            if (member(e, "valueFrom") != nullptr || string_or(value) != segment) {
                return where("containers", i, c) + " sets " + std::string(kSegmentVar) + " to " +
                       (member(e, "valueFrom") != nullptr ? std::string("a reference")
                                                          : quote_value(string_or(value))) +
                       ", but the agent writes segment " + quote_value(segment) +
                       ": remove the variable, or name the segment with the annotation "
                       "config.yuxi.dev/segment";
            }
        }
    }
    return std::nullopt;
}

json make_agent(const SidecarTemplate& t, const SidecarSettings& s) {
    json agent = t.agent;
    agent["image"] = s.image;
    json env = json::array();
    for (const json& e : items(t.agent, "env")) {
        env.push_back(e);
    }
    for (const EnvVar& v : s.env) {
        env.push_back({{"name", v.name}, {"value", v.value}});
    }
    agent["env"] = std::move(env);
    if (json* from = agent.contains("envFrom") ? &agent["envFrom"] : nullptr;
        from != nullptr && from->is_array()) {
        for (json& f : *from) {
            if (f.is_object() && f.contains("secretRef") && f["secretRef"].is_object()) {
                f["secretRef"]["name"] = s.secret;
            }
        }
    }
    json resources = json::object();
    const auto set = [&](const char* kind, const char* what, const std::string& q) {
        if (!q.empty()) {
            resources[kind][what] = q;
        }
    };
    set("requests", "cpu", s.resources.cpu_request);
    set("requests", "memory", s.resources.memory_request);
    set("limits", "cpu", s.resources.cpu_limit);
    set("limits", "memory", s.resources.memory_limit);
    if (resources.empty()) {
        agent.erase("resources");
    } else {
        agent["resources"] = std::move(resources);
    }
    if (!s.native) {
        agent.erase("restartPolicy");
    }
    return agent;
}

// The segment's mount and variable in one app container (checked by conflict() first).
void add_to_app(json& c, const SidecarTemplate& t, std::string_view segment) {
    for (const json& m : t.app_volume_mounts) {
        if (!c.contains("volumeMounts") || !c["volumeMounts"].is_array()) {
            c["volumeMounts"] = json::array();
        }
        c["volumeMounts"].push_back(m);
    }
    for (json e : t.app_env) {
        const std::string_view name = string_or(member(e, "name"));
        if (name == kSegmentVar) {
            e["value"] = segment;
        }
        if (!c.contains("env") || !c["env"].is_array()) {
            c["env"] = json::array();
        }
        bool present = false;
        for (const json& have : c["env"]) {
            present = present || string_or(member(have, "name")) == name;
        }
        if (!present) {
            c["env"].push_back(std::move(e));
        }
    }
}

// Sets the pod's fsGroup (and its change policy) when the pod has none.
void add_fs_group(json& spec, const SidecarTemplate& t) {
    const json* group = member(t.pod_security_context, "fsGroup");
    if (group == nullptr) {
        return;
    }
    if (!spec.contains("securityContext") || !spec["securityContext"].is_object()) {
        spec["securityContext"] = json::object();
    }
    json& sc = spec["securityContext"];
    if (sc.contains("fsGroup") && !sc["fsGroup"].is_null()) {
        return;
    }
    sc["fsGroup"] = *group;
    if (const json* policy = member(t.pod_security_context, "fsGroupChangePolicy")) {
        sc["fsGroupChangePolicy"] = *policy;
    }
}

// Allowed, but said: a pod on the host's network (the agent's port is the node's), and app
// containers that run as the agent's uid (they could write the segment).
std::vector<std::string> warnings_for(const json& spec, const json& agent) {
    std::vector<std::string> out;
    if (const json* host = member(spec, "hostNetwork"); host != nullptr && *host == true) {
        out.emplace_back(
            "hostNetwork: the agent's port 9464 is the node's; two such pods "
            "on one node collide");
    }
    const json* agent_sc = member(agent, "securityContext");
    const json* agent_uid = agent_sc != nullptr ? member(*agent_sc, "runAsUser") : nullptr;
    if (agent_uid == nullptr || !agent_uid->is_number_integer()) {
        return out;
    }
    const json* pod_sc = member(spec, "securityContext");
    const json* pod_uid = pod_sc != nullptr ? member(*pod_sc, "runAsUser") : nullptr;
    const json& containers = items(spec, "containers");
    for (std::size_t i = 0; i < containers.size(); ++i) {
        const json* sc = member(containers[i], "securityContext");
        const json* uid = sc != nullptr ? member(*sc, "runAsUser") : nullptr;
        if (uid == nullptr) {
            uid = pod_uid;
        }
        if (uid != nullptr && *uid == *agent_uid) {
            out.push_back(where("containers", i, containers[i]) + " runs as uid " +
                          agent_uid->dump() + " like the agent: it could write the segment");
        }
    }
    return out;
}

}  // namespace

Injection inject(const json& pod, const SidecarTemplate& t, const SidecarSettings& defaults) {
    if (auto problem = shape_problem(pod)) {
        return refused("malformed_pod", *problem);
    }
    const json* meta = member(pod, "metadata");
    const json* annotations = meta != nullptr ? member(*meta, "annotations") : nullptr;
    const auto request = read_inject_request(annotations);
    if (!request) {
        return refused("annotation", request.reason());
    }
    if (*request == InjectRequest::absent) {
        return unchanged("not_requested");
    }
    if (*request == InjectRequest::opt_out) {
        return unchanged("opted_out");
    }
    const json& spec = *member(pod, "spec");
    if (has_agent(spec)) {
        return unchanged("already_injected");
    }
    auto settings = apply_annotations(annotations, defaults);
    if (!settings) {
        return refused("annotation", settings.reason());
    }
    const std::string segment(settings->env_value(kSegmentVar));
    if (auto problem = conflict(spec, t, segment)) {
        return refused("conflict", *problem);
    }

    json mutated = pod;
    json& mspec = mutated["spec"];
    const json agent = make_agent(t, *settings);
    for (json& c : mspec["containers"]) {
        add_to_app(c, t, segment);
    }
    if (settings->native) {
        json inits = json::array({agent});
        for (const json& c : items(spec, "initContainers")) {
            inits.push_back(c);
        }
        mspec["initContainers"] = std::move(inits);
    } else {
        mspec["containers"].push_back(agent);
    }
    if (!mspec.contains("volumes") || !mspec["volumes"].is_array()) {
        mspec["volumes"] = json::array();
    }
    mspec["volumes"].push_back(t.volume);
    for (const json& v : t.agent_volumes) {
        mspec["volumes"].push_back(v);
    }
    add_fs_group(mspec, t);
    json& mmeta = mutated["metadata"];
    for (const auto& [k, v] : t.pod_labels.items()) {
        mmeta["labels"][k] = v;
    }
    mmeta["annotations"][std::string(kStatusAnnotation)] = kStatusInjected;

    Injection r;
    r.decision = Decision::patched;
    r.reason = "patched";
    r.warnings = warnings_for(mspec, agent);
    r.patch = json::diff(pod, mutated);
    return r;
}

}  // namespace yuxi::config::injector
