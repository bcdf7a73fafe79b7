// The sidecar template: the embedded injector/sidecar_template.json, checked, and the
// component's settings it implies.
#include <stdexcept>

#include "patch.hpp"

namespace yuxi::config::injector {
namespace {

using nlohmann::json;

std::string quantity_at(const json& agent, const char* kind, const char* what) {
    const auto r = agent.find("resources");
    if (r == agent.end() || !r->is_object()) {
        return {};
    }
    const auto k = r->find(kind);
    if (k == r->end() || !k->is_object()) {
        return {};
    }
    const auto q = k->find(what);
    return q != k->end() && q->is_string() ? q->get<std::string>() : std::string();
}

}  // namespace

Decoded<SidecarTemplate> SidecarTemplate::parse(std::string_view text) {
    json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) {
        return refuse("the sidecar template is not a JSON object");
    }
    SidecarTemplate t;
    const auto take = [&](const char* key, json::value_t type, json& into) {
        const auto it = doc.find(key);
        if (it == doc.end() || it->type() != type) {
            return false;
        }
        into = std::move(*it);
        return true;
    };
    json env;
    if (!take("agent", json::value_t::object, t.agent) ||
        !take("agentEnv", json::value_t::array, env) ||
        !take("volume", json::value_t::object, t.volume) ||
        !take("agentVolumes", json::value_t::array, t.agent_volumes) ||
        !take("podSecurityContext", json::value_t::object, t.pod_security_context) ||
        !take("podLabels", json::value_t::object, t.pod_labels) ||
        !take("appEnv", json::value_t::array, t.app_env) ||
        !take("appVolumeMounts", json::value_t::array, t.app_volume_mounts)) {
        return refuse("the sidecar template lacks a field or has one of the wrong type");
    }
    for (const json& e : env) {
        const auto n = e.find("name");
        const auto v = e.find("value");
        if (!e.is_object() || n == e.end() || !n->is_string() || v == e.end() || !v->is_string()) {
            return refuse(
                "the sidecar template's agentEnv holds something else than {name, value}");
        }
        t.agent_env.push_back({n->get<std::string>(), v->get<std::string>()});
    }
    const auto name = t.agent.find("name");
    if (name == t.agent.end() || *name != kAgentName) {
        return refuse("the sidecar template's agent is not named yuxi-config-agent");
    }
    for (const json* v : {&t.volume}) {
        const auto vname = v->find("name");
        if (vname == v->end() || !vname->is_string()) {
            return refuse("the sidecar template's volume has no name");
        }
    }
    for (const json& v : t.agent_volumes) {
        const auto vname = v.find("name");
        if (!v.is_object() || vname == v.end() || !vname->is_string()) {
            return refuse("one of the sidecar template's agentVolumes has no name");
        }
    }
    return t;
}

const SidecarTemplate& SidecarTemplate::embedded() {
    static const SidecarTemplate t = [] {
        auto parsed = parse(sidecar_template_text());
        if (!parsed) {
            throw std::runtime_error("injector/sidecar_template.json: " + parsed.reason());
        }
        return std::move(parsed).value();
    }();
    return t;
}

SidecarSettings SidecarTemplate::defaults() const {
    SidecarSettings s;
    const auto image = agent.find("image");
    s.image = image != agent.end() && image->is_string() ? image->get<std::string>() : "";
    s.env = agent_env;
    s.resources.cpu_request = quantity_at(agent, "requests", "cpu");
    s.resources.memory_request = quantity_at(agent, "requests", "memory");
    s.resources.cpu_limit = quantity_at(agent, "limits", "cpu");
    s.resources.memory_limit = quantity_at(agent, "limits", "memory");
    const auto from = agent.find("envFrom");
    if (from != agent.end() && from->is_array()) {
        for (const json& f : *from) {
            const auto ref = f.find("secretRef");
            if (ref != f.end() && ref->is_object() && ref->contains("name") &&
                (*ref)["name"].is_string()) {
                s.secret = (*ref)["name"].get<std::string>();
            }
        }
    }
    return s;
}

}  // namespace yuxi::config::injector
