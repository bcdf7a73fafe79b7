// Fleet: the agents' reports in Redis (yuxi:config:agents), and waiting on them.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <thread>

#include "core/agent_report.hpp"
#include "core/change_message.hpp"
#include "core/redis_keys.hpp"
#include "core/signing.hpp"
#include "core/text.hpp"
#include "lock/redis_connection.hpp"
#include "yuxi/config/admin.hpp"

namespace yuxi::config {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_epoch_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string seconds(std::chrono::milliseconds d) {
    std::string s = std::to_string(static_cast<double>(d.count()) / 1000.0);
    while (s.size() > 1 && s.back() == '0') {
        s.pop_back();
    }
    if (s.back() == '.') {
        s.pop_back();
    }
    return s;
}

AdminError usage(std::string what) {
    return AdminError(AdminError::Kind::usage, std::move(what));
}

std::optional<std::string> env(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        return std::nullopt;
    }
    return std::string(v);
}

// One key: from `file`, else the file `file_var` names, else the text of `text_var`.
std::optional<SigningKey> load_key(std::string file, const char* file_var, const char* text_var,
                                   std::string text = {}) {
    std::string origin = text.empty() ? file : "the key given";
    if (text.empty() && file.empty()) {
        if (auto f = env(file_var)) {
            file = *f;
            origin = std::string(file_var) + " (" + file + ")";
        }
    }
    if (text.empty() && !file.empty()) {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            throw usage("cannot read the signing key file " + origin);
        }
        text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else if (text.empty()) {
        auto v = env(text_var);
        if (!v) {
            return std::nullopt;
        }
        text = std::move(*v);
        origin = text_var;
    }
    auto key = SigningKey::from_base64(text, origin);
    if (!key) {
        throw usage(key.reason());
    }
    return std::move(*key);
}

// The keys that verify the reports, or null for a fleet that runs unsigned.
std::unique_ptr<KeyRing> keys_of(const FleetTrust& trust) {
    if (trust.insecure || env("YUXI_CONFIG_INSECURE_REDIS")) {
        return nullptr;
    }
    auto current = load_key(trust.key_file, "YUXI_CONFIG_SIGNING_KEY_FILE",
                            "YUXI_CONFIG_SIGNING_KEY", trust.key);
    if (!current) {
        throw usage(
            "the agents sign their reports: give the fleet's key (--signing-key-file, "
            "YUXI_CONFIG_SIGNING_KEY_FILE or YUXI_CONFIG_SIGNING_KEY), or --insecure-redis for "
            "a fleet that runs unsigned");
    }
    auto previous =
        load_key({}, "YUXI_CONFIG_SIGNING_KEY_PREVIOUS_FILE", "YUXI_CONFIG_SIGNING_KEY_PREVIOUS");
    return std::make_unique<KeyRing>(std::move(*current), std::move(previous));
}

std::string shown(const RedisEndpoint& e) {
    if (e.uses_sentinel()) {
        return "Redis master '" + e.sentinel_master + "' of the Sentinels " + e.sentinels.front();
    }
    return "Redis at " + e.host + ":" + std::to_string(e.port);
}

Decoded<std::pair<std::string, AgentReport>> decode_report(std::string_view field,
                                                           std::string_view value,
                                                           const KeyRing* keys) {
    auto pod = decode_pod_name(field);
    if (!pod) {
        return refuse(pod.reason());
    }
    const auto document = open_document(value, keys);
    if (!document) {
        return refuse(document.reason());
    }
    auto report = decode_agent_report(*document);
    if (!report) {
        return refuse(report.reason());
    }
    return std::pair{std::move(*pod), std::move(*report)};
}

}  // namespace

struct Fleet::Impl {
    Impl(RedisEndpoint e, std::chrono::milliseconds stale, const FleetTrust& trust)
        : redis(std::move(e)), stale_after(stale), keys(keys_of(trust)) {}

    AdminError unreachable(const LockError& x) const {
        const RedisEndpoint& e = redis.endpoint();
        return AdminError(AdminError::Kind::unavailable,
                          "cannot use " + shown(e) + " (" + std::string(to_string(x.kind())) +
                              "): " + x.what() +
                              "; check REDIS_HOST/REDIS_PORT/REDIS_PASSWORD or REDIS_SENTINELS "
                              "(or --redis-host, --redis-port)");
    }

    detail::RedisConnection redis;
    std::chrono::milliseconds stale_after;
    std::unique_ptr<KeyRing> keys;  // null: the fleet runs unsigned
    std::set<std::string> warned;   // fields already named in a warning
    std::vector<std::string> warnings;
};

Fleet::Fleet(RedisEndpoint endpoint, std::chrono::milliseconds stale_after, FleetTrust trust)
    : impl_(std::make_unique<Impl>(std::move(endpoint), stale_after, trust)) {}
Fleet::~Fleet() = default;
Fleet::Fleet(Fleet&&) noexcept = default;
Fleet& Fleet::operator=(Fleet&&) noexcept = default;

const RedisEndpoint& Fleet::endpoint() const noexcept {
    return impl_->redis.endpoint();
}

void Fleet::ping() {
    try {
        (void)impl_->redis.command({"PING"});
    } catch (const LockError& x) {
        throw impl_->unreachable(x);
    }
}

std::vector<std::string> Fleet::take_warnings() {
    return std::exchange(impl_->warnings, {});
}

std::vector<AgentStatus> Fleet::agents() {
    detail::ReplyPtr reply;
    try {
        reply = impl_->redis.command({"HGETALL", kAgentsHash});
    } catch (const LockError& x) {
        throw impl_->unreachable(x);
    }
    std::vector<AgentStatus> out;
    if (reply->type != REDIS_REPLY_ARRAY) {
        return out;
    }
    const std::int64_t now = now_epoch_ms();
    for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply* f = reply->element[i];
        const redisReply* v = reply->element[i + 1];
        const std::string_view field =
            f != nullptr && f->str != nullptr ? std::string_view(f->str, f->len) : "";
        const std::string_view value =
            v != nullptr && v->str != nullptr ? std::string_view(v->str, v->len) : "";
        auto report = decode_report(field, value, impl_->keys.get());
        if (!report) {
            if (impl_->warned.insert(std::string(field)).second) {
                impl_->warnings.push_back("ignoring " + std::string(kAgentsHash) + " field \"" +
                                          printable(field, 64) + "\": " + report.reason());
            }
            continue;
        }
        auto& [pod, body] = *report;
        AgentStatus a;
        a.pod = std::move(pod);
        a.role = body.role;
        a.state = body.state;
        a.segment = body.segment;
        a.revision = body.revision;
        const auto beat = static_cast<std::int64_t>(
            std::min<std::uint64_t>(body.heartbeat_ms, std::numeric_limits<std::int64_t>::max()));
        a.heartbeat_age_ms = std::max<std::int64_t>(0, now - beat);
        a.live = a.heartbeat_age_ms < impl_->stale_after.count();
        for (const ValueRejection& r : body.rejected) {
            a.rejected.push_back({r.revision, r.ns, r.key, r.reason});
        }
        a.rejected_keys = std::max<std::uint64_t>(body.rejected_keys, a.rejected.size());
        out.push_back(std::move(a));
    }
    std::sort(out.begin(), out.end(),
              [](const AgentStatus& a, const AgentStatus& b) { return a.pod < b.pod; });
    return out;
}

std::size_t Fleet::wait(std::uint64_t revision, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::size_t live_count = 0;
    for (bool first = true;; first = false) {
        std::vector<AgentStatus> agents = this->agents();
        std::erase_if(agents, [](const AgentStatus& a) { return !a.live; });
        if (first) {
            live_count = agents.size();
            if (agents.empty()) {
                return 0;
            }
        }
        // An agent at the revision that still holds back a value refused at or below it
        // serves another state than the database's at `revision`, and will until a valid
        // write of the key (an agent still behind may yet apply that write).
        std::vector<AgentStatus> refusing;
        for (const AgentStatus& a : agents) {
            if (a.revision >= revision &&
                std::any_of(a.rejected.begin(), a.rejected.end(),
                            [&](const AgentRejection& r) { return r.revision <= revision; })) {
                refusing.push_back(a);
            }
        }
        // The agents still behind. A refusal fails the wait once none is (so that the error
        // names every pod that refuses: one a heartbeat behind may report the same refusal
        // a moment later), or at the deadline with those known by then.
        std::erase_if(agents, [&](const AgentStatus& a) { return a.revision >= revision; });
        if (!refusing.empty() && (agents.empty() || Clock::now() >= deadline)) {
            std::string why = std::to_string(refusing.size()) +
                              " agent(s) refused a value up to revision " +
                              std::to_string(revision) + " and keep its last good one:";
            for (const AgentStatus& a : refusing) {
                for (const AgentRejection& r : a.rejected) {
                    if (r.revision <= revision) {
                        why += " " + a.pod + " (" + r.ns + " '" + printable(r.key, 100) +
                               "' at revision " + std::to_string(r.revision) + ": " +
                               printable(r.reason, 300) + ")";
                        break;
                    }
                }
            }
            throw WaitError(AdminError::Kind::rejected,
                            why + "; a valid write of the key clears it (yuxi-configctl agents)",
                            revision, std::move(refusing));
        }
        if (agents.empty()) {
            return live_count;
        }
        if (Clock::now() >= deadline) {
            std::string why = "after " + seconds(timeout) + " s " + std::to_string(agents.size()) +
                              " live agent(s) have not applied revision " +
                              std::to_string(revision) + ":";
            for (const AgentStatus& a : agents) {
                why += " " + a.pod + " (revision " + std::to_string(a.revision) + ", state " +
                       a.state + ")";
            }
            throw WaitError(AdminError::Kind::timeout, why + "; see yuxi-configctl agents",
                            revision, std::move(agents));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

}  // namespace yuxi::config
