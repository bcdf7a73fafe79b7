// Encoding and decoding the agents' reports.
#include "core/agent_report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

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

// At most `max` bytes of `s`, not cutting a UTF-8 sequence.
std::string cut(std::string_view s, std::size_t max) {
    if (s.size() <= max) {
        return std::string(s);
    }
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;
    }
    return std::string(s.substr(0, n));
}

}  // namespace

std::string encode_agent_report(const AgentReport& report) {
    nlohmann::json doc = {{"v", 1},
                          {"revision", report.revision},
                          {"heartbeat_ms", report.heartbeat_ms},
                          {"segment", report.segment},
                          {"role", report.role},
                          {"state", report.state}};
    if (!report.rejected.empty() || report.rejected_keys != 0) {
        nlohmann::json list = nlohmann::json::array();
        for (const ValueRejection& r : report.rejected) {
            if (list.size() == kMaxReportedRejections) {
                break;
            }
            list.push_back({{"revision", r.revision},
                            {"namespace", r.ns},
                            {"key", cut(r.key, kMaxRejectionKeyBytes)},
                            {"reason", cut(r.reason, kMaxRejectionReasonBytes)}});
        }
        doc["rejected"] = std::move(list);
        doc["rejected_keys"] =
            std::max<std::uint64_t>(report.rejected_keys, report.rejected.size());
    }
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
    const nlohmann::json* rejected =
        f.has("rejected") ? f.array("rejected", kMaxReportedRejections) : nullptr;
    r.rejected_keys = f.u64_or("rejected_keys", 0);
    if (!f.ok()) {
        return refuse(f.error());
    }
    for (std::size_t i = 0; rejected != nullptr && i < rejected->size(); ++i) {
        Fields e((*rejected)[i], "agent report rejection " + std::to_string(i));
        const auto revision_at = e.u64("revision", 0, (1ULL << 63) - 1);
        const auto ns = e.one_of("namespace", {"config", "metadata"});
        const auto key = e.text("key", kMaxRejectionKeyBytes);
        const auto reason = e.text("reason", kMaxRejectionReasonBytes, true);
        if (!e.ok()) {
            return refuse(e.error());
        }
        r.rejected.push_back(
            {*revision_at, std::string(*ns), std::string(*key), std::string(*reason)});
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
