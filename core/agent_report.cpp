// Encoding and decoding the agents' reports.
#include "core/agent_report.hpp"

#include <nlohmann/json.hpp>

#include "core/json_document.hpp"

namespace yuxi::config {
namespace {

bool printable(std::string_view s) {
    for (const char c : s) {
        if (c < 0x20 || c > 0x7e) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::string encode_agent_report(const AgentReport& report) {
    const nlohmann::json doc = {{"v", 1},
                                {"revision", report.revision},
                                {"heartbeat_ms", report.heartbeat_ms},
                                {"segment", report.segment},
                                {"role", report.role},
                                {"state", report.state}};
    return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Decoded<AgentReport> decode_agent_report(std::string_view text) {
    auto doc = parse_json(text, {kMaxAgentReportBytes, 4});
    if (!doc) {
        return refuse(doc.reason());
    }
    Fields f(*doc, "agent report");
    AgentReport r;
    const auto v = f.u64("v", 1, 1);
    const auto revision = f.u64("revision", 0, (1ULL << 63) - 1);
    const auto beat = f.u64("heartbeat_ms");
    const auto segment = f.text_or("segment", "?", 255);
    const auto role = f.text_or("role", "?", 32);
    const auto state = f.text_or("state", "?", 32);
    if (!f.ok()) {
        return refuse(f.error());
    }
    if (!printable(segment) || !printable(role) || !printable(state)) {
        return refuse("agent report: a text field holds control characters");
    }
    (void)v;
    r.revision = *revision;
    r.heartbeat_ms = *beat;
    r.segment = std::string(segment);
    r.role = std::string(role);
    r.state = std::string(state);
    return r;
}

Decoded<std::string> decode_pod_name(std::string_view field) {
    if (field.empty() || field.size() > kMaxPodNameBytes || !printable(field)) {
        return refuse("a pod name must be 1 to 253 printable characters");
    }
    return std::string(field);
}

}  // namespace yuxi::config
