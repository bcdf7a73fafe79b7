// yuxi-config-agent: flags, logging, signals and the event loop; the work is in the modes.
#include <event2/event.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "agent/file/file_mode.hpp"
#include "agent/file/file_source.hpp"
#include "agent/ops/http_server.hpp"
#include "agent/ops/logging.hpp"
#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"
#include "agent/ops/rejections.hpp"
#include "agent/postgres/database_mode.hpp"
#include "agent/segment/segment_writer.hpp"
#include "core/database_url.hpp"
#include "core/event_loop.hpp"
#include "core/text.hpp"

namespace {

using namespace yuxi::config::agent;
using yuxi::config::EventBasePtr;
using yuxi::config::EventPtr;
using yuxi::config::printable;
using yuxi::config::redact_database_url;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

// The signals the loop handles. They stay blocked from the start of main until the loop's
// handlers are registered, so that one sent during start-up is neither lost nor fatal: it
// is delivered then, and the loop stops between two callbacks, never in the middle of a
// segment write.
sigset_t loop_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (const int sig : {SIGTERM, SIGINT, SIGHUP}) {
        sigaddset(&set, sig);
    }
    return set;
}

void block_loop_signals(bool block) {
    const sigset_t set = loop_signals();
    (void)::sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

// libevent's own warnings go to our log, so that a JSON log stays JSON.
void on_libevent_log(int severity, const char* msg) {
    switch (severity) {
        case EVENT_LOG_DEBUG:
            spdlog::debug("libevent: {}", msg);
            break;
        case EVENT_LOG_MSG:
            spdlog::info("libevent: {}", msg);
            break;
        case EVENT_LOG_WARN:
            spdlog::warn("libevent: {}", msg);
            break;
        default:
            spdlog::error("libevent: {}", msg);
            break;
    }
}

struct Loop {
    event_base* base;
    std::function<void()> on_hup;
};

void on_stop_signal(evutil_socket_t sig, short, void* arg) {
    guarded("signal", [&] {
        auto* loop = static_cast<Loop*>(arg);
        spdlog::info("signal {}: stopping", sig);
        event_base_loopbreak(loop->base);
    });
}

void on_hup(evutil_socket_t, short, void* arg) {
    guarded("signal", [&] { static_cast<Loop*>(arg)->on_hup(); });
}

// Registers the signal handlers on the loop, then lets the signals in.
bool handle_signals(event_base* base, Loop& loop, std::vector<EventPtr>& events) {
    for (const int sig : {SIGTERM, SIGINT}) {
        events.emplace_back(evsignal_new(base, sig, on_stop_signal, &loop));
    }
    events.emplace_back(evsignal_new(base, SIGHUP, on_hup, &loop));
    for (const auto& ev : events) {
        if (!ev || event_add(ev.get(), nullptr) != 0) {
            spdlog::critical("libevent: cannot handle signals");
            return false;
        }
    }
    block_loop_signals(false);
    return true;
}

// Runs `mode` (FileMode or DatabaseMode) on `base`, with the HTTP server, until a stop
// signal or a fatal error. The server listens before the mode starts, so that a bad
// --http fails before the segment is touched.
template <class ModeT>
int serve(const Options& options, event_base* base, ModeT& mode, Loop& loop) {
    Metrics metrics{std::string(agent_version())};
    mode.set_metrics(&metrics);
    HttpServer http(base, metrics, [&mode] { return mode.status(); });
    std::vector<EventPtr> signals;
    if (!handle_signals(base, loop, signals)) {
        return kExitRuntime;
    }
    try {
        http.start(options.http);
    } catch (const HttpError& e) {
        spdlog::critical("{}", e.what());
        return kExitRuntime;
    }
    bool fatal = false;
    set_fatal_handler([&fatal, base](std::string_view) {
        fatal = true;
        event_base_loopbreak(base);
    });
    mode.start();
    if (event_base_dispatch(base) < 0) {
        spdlog::critical("libevent: the event loop failed");
        fatal = true;
    }
    set_fatal_handler(nullptr);
    mode.stop();
    return fatal ? kExitRuntime : 0;
}

int run_file(const Options& options, event_base* base) {
    FileMode mode(options, base);
    Loop loop{base, [&mode] { mode.reload_all(); }};
    spdlog::info("starting in file mode: segment '{}', {} config file(s), {} metadata file(s)",
                 options.segment, options.config_files.size(), options.metadata.size());
    return serve(options, base, mode, loop);
}

int run_database(const Options& options, event_base* base) {
    DatabaseMode mode(options, base);
    Loop loop{base, [&mode] { mode.wake(); }};
    try {
        const int rc = serve(options, base, mode, loop);
        return rc != 0 ? rc : mode.exit_code();
    } catch (const OptionsError& e) {
        spdlog::critical("{}", e.what());
        return kExitUsage;
    } catch (const WriterError& e) {
        spdlog::critical("{}", e.what());
        return kExitRuntime;
    }
}

int run(const Options& options) {
    event_set_log_callback(on_libevent_log);
    EventBasePtr base(event_base_new());
    if (!base) {
        spdlog::critical("libevent: cannot create the event loop");
        return kExitRuntime;
    }
    return options.mode == Mode::database ? run_database(options, base.get())
                                          : run_file(options, base.get());
}

// --check: what the agent would serve, without serving it.
int check(const Options& options) {
    if (options.mode == Mode::database) {
        std::printf("yuxi-config-agent: settings OK (database mode, %s; not connected)\n",
                    redact_database_url(options.database_url).c_str());
        return 0;
    }
    spdlog::set_level(spdlog::level::off);  // the problem is printed once, below
    FileSource source(options);
    for (std::size_t i = 0; i < source.files().size(); ++i) {
        if (!source.reload(i)) {
            std::fprintf(stderr, "yuxi-config-agent: %s\n", source.files()[i].problem.c_str());
            return kExitUsage;
        }
    }
    const EntryMap entries = source.entries();
    const Plan plan = plan_changes({}, entries, options.max_value_bytes);
    if (!plan.refused.empty()) {
        const Refusal& r = plan.refused.front();
        std::fprintf(stderr, "yuxi-config-agent: key '%s': %s\n", printable(r.key.key).c_str(),
                     r.reason.c_str());
        return kExitUsage;
    }
    std::printf(
        "yuxi-config-agent: settings and files OK (file mode: %zu entries from %zu file(s); "
        "nothing was written)\n",
        entries.size(), source.files().size());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    block_loop_signals(true);
    // A client that goes away mid-answer must cost an EPIPE, not the process.
    (void)std::signal(SIGPIPE, SIG_IGN);
    const std::string_view program = argc > 0 ? argv[0] : "yuxi-config-agent";
    const std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    Options options;
    try {
        options = parse_options(args);
    } catch (const OptionsError& e) {
        std::fprintf(stderr, "yuxi-config-agent: %s (see %s --help)\n", e.what(),
                     std::string(program).c_str());
        return kExitUsage;
    }
    if (options.help) {
        std::fputs(usage(program).c_str(), stdout);
        return 0;
    }
    if (options.version) {
        std::puts(version_text().c_str());
        return 0;
    }
    if (options.check) {
        return check(options);
    }
    setup_logging(options.log_level, options.log_format);
    try {
        return run(options);
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return kExitRuntime;
    }
}
