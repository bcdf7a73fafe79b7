// yuxi-config-injector: flags, logging, signals, the certificate reload timer and the
// event loop; the work is in the webhook (webhook.hpp) and the servers (http_server.hpp).
#include <event2/event.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <ctime>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "guarded.hpp"
#include "http_server.hpp"
#include "logging.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "patch.hpp"
#include "tls_context.hpp"
#include "webhook.hpp"

namespace {

using namespace yuxi::config::injector;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
// What a stopping injector gives the answers it is writing, after it stops accepting.
constexpr std::chrono::milliseconds kDrain{1000};

// Blocked from the start of main until the loop handles them, so that a signal during
// start-up is neither lost nor fatal.
void block_loop_signals(bool block) {
    sigset_t set;
    sigemptyset(&set);
    for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
        sigaddset(&set, sig);
    }
    (void)::sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

// libevent's own messages go to our log, so that a JSON log stays JSON.
void on_libevent_log(int severity, const char* msg) {
    if (severity == EVENT_LOG_DEBUG) {
        spdlog::debug("libevent: {}", msg);
    } else if (severity == EVENT_LOG_MSG) {
        spdlog::info("libevent: {}", msg);
    } else {
        spdlog::warn("libevent: {}", msg);
    }
}

struct EventFree {
    void operator()(event* e) const noexcept { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventFree>;
struct EventBaseFree {
    void operator()(event_base* b) const noexcept { event_base_free(b); }
};

std::string utc(std::int64_t unix_seconds) {
    const std::time_t t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[32];
    const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf, n);
}

// Everything the loop's callbacks reach.
struct Injector {
    event_base* base;
    Metrics& metrics;
    TlsContext& tls;
    std::vector<HttpServer*> servers;
    bool stopping = false;

    void reload_tls() {
        switch (tls.reload()) {
            case TlsContext::Reload::unchanged:
                return;
            case TlsContext::Reload::reloaded:
                metrics.count_tls_reload(true);
                metrics.set_certificate_expiry(tls.not_after());
                spdlog::info(
                    "TLS: the certificate and key changed; new connections use the new "
                    "pair (expires {})",
                    utc(tls.not_after()));
                return;
            case TlsContext::Reload::failed:
                metrics.count_tls_reload(false);
                spdlog::warn(
                    "TLS: the certificate files changed but do not load, the previous "
                    "pair stays in use: {}",
                    tls.error());
                return;
        }
    }

    void stop(int sig) {
        if (stopping) {
            spdlog::info("signal {} again: stopping now", sig);
            event_base_loopbreak(base);
            return;
        }
        stopping = true;
        spdlog::info("signal {}: stopping (no new connections; answers in progress finish)", sig);
        for (HttpServer* s : servers) {
            s->stop_accepting();
        }
        const timeval tv{0, static_cast<suseconds_t>(kDrain.count() * 1000)};
        event_base_loopexit(base, &tv);
    }

    HttpAnswer readyz() const {
        if (stopping) {
            return {503, "not ready: stopping\n"};
        }
        if (tls.not_after() != 0 &&
            tls.not_after() < static_cast<std::int64_t>(std::time(nullptr))) {
            return {503,
                    "not ready: the TLS certificate expired at " + utc(tls.not_after()) + "\n"};
        }
        return {200, "ready\n"};
    }

    std::string render_metrics() {
        std::size_t open = 0;
        for (const HttpServer* s : servers) {
            open += s->connections();
        }
        metrics.set_connections(open);
        return metrics.render();
    }
};

void on_signal(evutil_socket_t sig, short, void* arg) {
    auto& in = *static_cast<Injector*>(arg);
    guarded(in.metrics, "signal", [&] {
        if (sig == SIGHUP) {
            spdlog::info("SIGHUP: reading the certificate and key again");
            in.reload_tls();
        } else {
            in.stop(static_cast<int>(sig));
        }
    });
}

void on_reload_timer(evutil_socket_t, short, void* arg) {
    auto& in = *static_cast<Injector*>(arg);
    guarded(in.metrics, "TLS reload", [&] { in.reload_tls(); });
}

int serve(const Options& o, const SidecarTemplate& t, event_base* base) {
    Metrics metrics;
    TlsContext tls(o.tls_cert, o.tls_key);
    try {
        tls.load();
    } catch (const TlsError& e) {
        spdlog::critical("TLS: {} (--tls-cert, --tls-key)", e.what());
        return kExitRuntime;
    }
    metrics.set_certificate_expiry(tls.not_after());
    Webhook webhook(t, o.sidecar, metrics, o.max_request_bytes);
    Injector in{base, metrics, tls, {}};
    Handlers handlers{[&](std::string_view body) { return webhook.review(body); },
                      [&] { return in.readyz(); }, [&] { return in.render_metrics(); }};
    const HttpLimits limits{o.request_timeout, o.max_request_bytes, o.max_connections};
    HttpServer https(base, &tls, handlers, limits, metrics);
    handlers.mutate = nullptr;
    HttpServer plain(base, nullptr, handlers, limits, metrics);
    in.servers.push_back(&https);

    std::vector<EventPtr> events;
    for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
        events.emplace_back(evsignal_new(base, sig, on_signal, &in));
    }
    events.emplace_back(event_new(base, -1, EV_PERSIST, on_reload_timer, &in));
    const timeval every{static_cast<time_t>(o.tls_reload_interval.count() / 1000),
                        static_cast<suseconds_t>((o.tls_reload_interval.count() % 1000) * 1000)};
    for (std::size_t i = 0; i < events.size(); ++i) {
        const bool timer = i + 1 == events.size();
        if (!events[i] || event_add(events[i].get(), timer ? &every : nullptr) != 0) {
            spdlog::critical("libevent: cannot register the signal handlers and the TLS timer");
            return kExitRuntime;
        }
    }
    block_loop_signals(false);
    try {
        https.start(o.listen, "--listen");
        if (o.metrics_listen.port != 0) {
            plain.start(o.metrics_listen, "--metrics-listen");
            in.servers.push_back(&plain);
        }
    } catch (const HttpError& e) {
        spdlog::critical("{}", e.what());
        return kExitRuntime;
    }
    spdlog::info(
        "yuxi-config-injector {}: HTTPS on {}:{} (/mutate, /healthz, /readyz, /metrics){}; "
        "certificate expires {}; agent image {}",
        version(), o.listen.host, https.port(),
        o.metrics_listen.port != 0
            ? fmt::format(", HTTP on {}:{}", o.metrics_listen.host, plain.port())
            : std::string(),
        utc(tls.not_after()), o.sidecar.image);
    if (event_base_dispatch(base) < 0) {
        spdlog::critical("libevent: the event loop failed");
        return kExitRuntime;
    }
    spdlog::info("stopped after {} patches", metrics.patches());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    block_loop_signals(true);
    // A client that goes away mid-answer must cost an EPIPE, not the process.
    (void)std::signal(SIGPIPE, SIG_IGN);
    const std::string_view program = argc > 0 ? argv[0] : "yuxi-config-injector";
    const std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    try {
        const SidecarTemplate& t = SidecarTemplate::embedded();
        Options o;
        try {
            o = parse_options(args, process_environment(), t);
        } catch (const OptionsError& e) {
            std::fprintf(stderr, "yuxi-config-injector: %s (see %s --help)\n", e.what(),
                         std::string(program).c_str());
            return kExitUsage;
        }
        if (o.help) {
            std::fputs(usage(program).c_str(), stdout);
            return 0;
        }
        if (o.version) {
            std::printf("yuxi-config-injector %s\n", std::string(version()).c_str());
            return 0;
        }
        setup_logging(o.log_level, o.log_format);
        event_set_log_callback(on_libevent_log);
        std::unique_ptr<event_base, EventBaseFree> base(event_base_new());
        if (!base) {
            spdlog::critical("libevent: cannot create the event loop");
            return kExitRuntime;
        }
        return serve(o, t, base.get());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "yuxi-config-injector: %s\n", e.what());
        return kExitRuntime;
    }
}
