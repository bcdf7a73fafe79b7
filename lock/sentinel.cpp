// Redis Sentinel discovery (sentinel.hpp).
#include "lock/sentinel.hpp"

#include <memory>
#include <stdexcept>

#include "core/timeval.hpp"
#include "lock/redis_connection.hpp"

namespace yuxi::config::detail {
namespace {

bool is_text(const redisReply* r) {
    return r != nullptr && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
           r->str != nullptr;
}

std::string_view text_of(const redisReply* r) {
    return std::string_view(r->str, r->len);
}

struct ContextFree {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

ReplyPtr run(redisContext* c, std::initializer_list<std::string_view> args) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const std::string_view a : args) {
        argv.push_back(a.data());
        lens.push_back(a.size());
    }
    return ReplyPtr(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
}

// One Sentinel's answer: the address, or why not (and whether it refused credentials).
struct Asked {
    std::optional<HostPort> primary;
    std::string why;
    bool auth = false;
};

Asked ask_one(const RedisEndpoint& e, const HostPort& sentinel) {
    Asked a;
    const timeval connect_tv = to_timeval(e.connect_timeout);
    ContextPtr c(e.connect_timeout.count() > 0
                     ? redisConnectWithTimeout(sentinel.host.c_str(), sentinel.port, connect_tv)
                     : redisConnect(sentinel.host.c_str(), sentinel.port));
    if (c == nullptr || c->err != 0) {
        a.why = c == nullptr ? "out of memory" : c->errstr;
        return a;
    }
    if (e.command_timeout.count() > 0) {
        (void)redisSetTimeout(c.get(), to_timeval(e.command_timeout));
    }
    if (!e.sentinel_password.empty()) {
        const ReplyPtr r = e.sentinel_username.empty()
                               ? run(c.get(), {"AUTH", e.sentinel_password})
                               : run(c.get(), {"AUTH", e.sentinel_username, e.sentinel_password});
        if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
            a.auth = r != nullptr;
            a.why = r == nullptr ? std::string(c->errstr)
                                 : "AUTH refused (check REDIS_SENTINEL_USERNAME/PASSWORD)";
            return a;
        }
    }
    const ReplyPtr r = run(c.get(), {"SENTINEL", "get-master-addr-by-name", e.sentinel_master});
    if (r == nullptr) {
        a.why = c->errstr;
        return a;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        const bool noauth = text_of(r.get()).starts_with("NOAUTH");
        a.auth = noauth;
        a.why = noauth ? "needs a password (REDIS_SENTINEL_PASSWORD)"
                       : redact(std::string(text_of(r.get())), e.sentinel_password);
        return a;
    }
    a.primary = decode_master_addr(r.get());
    if (!a.primary) {
        a.why = r->type == REDIS_REPLY_NIL ? "does not know master '" + e.sentinel_master + "'"
                                           : "an answer that is not an address";
    }
    return a;
}

}  // namespace

std::vector<HostPort> parse_sentinel_list(std::string_view text) {
    auto list = parse_host_list(text, kDefaultSentinelPort);
    if (!list) {
        throw std::invalid_argument(list.reason());
    }
    return std::move(*list);
}

std::optional<HostPort> decode_master_addr(const redisReply* r) {
    if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        !is_text(r->element[0]) || !is_text(r->element[1])) {
        return std::nullopt;
    }
    const std::string_view host = text_of(r->element[0]);
    const auto port = parse_port_number(text_of(r->element[1]));
    if (host.empty() || host.size() > 255 || !port ||
        host.find_first_of(" \t\r\n,") != std::string_view::npos) {
        return std::nullopt;
    }
    return HostPort{std::string(host), *port};
}

bool decode_role_is_master(const redisReply* r) {
    return r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
           is_text(r->element[0]) && text_of(r->element[0]) == "master";
}

std::optional<HostPort> decode_switch_master(std::string_view message, std::string_view master) {
    std::string_view fields[5];
    std::size_t n = 0;
    while (!message.empty()) {
        const auto space = message.find(' ');
        const std::string_view word = message.substr(0, space);
        if (!word.empty()) {
            if (n == 5) {
                return std::nullopt;
            }
            fields[n++] = word;
        }
        if (space == std::string_view::npos) {
            break;
        }
        message.remove_prefix(space + 1);
    }
    if (n != 5 || fields[0] != master || fields[3].size() > 255) {
        return std::nullopt;
    }
    const auto port = parse_port_number(fields[4]);
    if (!port) {
        return std::nullopt;
    }
    return HostPort{std::string(fields[3]), *port};
}

std::vector<HostPort> sentinels_of(const RedisEndpoint& endpoint) {
    std::vector<HostPort> out;
    for (const std::string& s : endpoint.sentinels) {
        for (HostPort& hp : parse_sentinel_list(s)) {
            out.push_back(std::move(hp));
        }
    }
    return out;
}

HostPort discover_primary(const RedisEndpoint& endpoint, std::size_t first, std::size_t* answered) {
    const std::vector<HostPort> sentinels = sentinels_of(endpoint);
    if (sentinels.empty()) {
        throw LockError(LockError::Kind::connect, "redis: no Sentinel configured");
    }
    std::string reasons;
    bool auth = false;
    for (std::size_t i = 0; i < sentinels.size(); ++i) {
        const std::size_t at = (first + i) % sentinels.size();
        const HostPort& s = sentinels[at];
        Asked a = ask_one(endpoint, s);
        if (a.primary) {
            if (answered != nullptr) {
                *answered = at;
            }
            return std::move(*a.primary);
        }
        auth = auth || a.auth;
        reasons += (reasons.empty() ? "" : "; ") + s.host + ":" + std::to_string(s.port) + ": " +
                   redact(a.why, endpoint.sentinel_password);
    }
    throw LockError(auth ? LockError::Kind::auth : LockError::Kind::connect,
                    "redis: no Sentinel gave the primary of '" + endpoint.sentinel_master + "' (" +
                        reasons + ")");
}

}  // namespace yuxi::config::detail
