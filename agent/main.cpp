// yuxi-config-agent: flags, logging, signals and the event loop; the work is in the modes.
#include <event2/event.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "database_mode.hpp"
#include "database_url.hpp"
#include "file_mode.hpp"
#include "options.hpp"
#include "segment_writer.hpp"

namespace {

using namespace yuxi::config::agent;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

spdlog::level::level_enum to_spdlog(LogLevel l) {
    switch (l) {
        case LogLevel::trace:
            return spdlog::level::trace;
        case LogLevel::debug:
            return spdlog::level::debug;
        case LogLevel::info:
            return spdlog::level::info;
        case LogLevel::warn:
            return spdlog::level::warn;
        case LogLevel::error:
            return spdlog::level::err;
        case LogLevel::critical:
            return spdlog::level::critical;
        case LogLevel::off:
            return spdlog::level::off;
    }
    return spdlog::level::info;
}

void setup_logging(LogLevel level) {
    auto logger = spdlog::stderr_color_st("yuxi-config-agent");
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
    logger->set_level(to_spdlog(level));
    // Every line reaches stderr at once: a supervisor (or a test) reads it while we run.
    logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
}

struct Loop {
    event_base* base;
    std::function<void()> on_hup;
};

void on_stop_signal(evutil_socket_t sig, short, void* arg) {
    auto* loop = static_cast<Loop*>(arg);
    spdlog::info("signal {}: stopping", sig);
    event_base_loopbreak(loop->base);
}

void on_hup(evutil_socket_t, short, void* arg) {
    static_cast<Loop*>(arg)->on_hup();
}

struct EventBaseFree {
    void operator()(event_base* b) const noexcept { event_base_free(b); }
};
struct EventFree {
    void operator()(event* e) const noexcept { event_free(e); }
};

// Runs `mode` (FileMode or DatabaseMode) on `base` until a stop signal or a fatal error.
template <class ModeT>
int serve(event_base* base, ModeT& mode, Loop& loop) {
    std::vector<std::unique_ptr<event, EventFree>> signals;
    for (const int sig : {SIGTERM, SIGINT}) {
        signals.emplace_back(evsignal_new(base, sig, on_stop_signal, &loop));
    }
    signals.emplace_back(evsignal_new(base, SIGHUP, on_hup, &loop));
    for (const auto& ev : signals) {
        if (!ev || event_add(ev.get(), nullptr) != 0) {
            spdlog::critical("libevent: cannot handle signals");
            return kExitRuntime;
        }
    }
    mode.start();
    if (event_base_dispatch(base) < 0) {
        spdlog::critical("libevent: the event loop failed");
        mode.stop();
        return kExitRuntime;
    }
    mode.stop();
    return 0;
}

int run_file(const Options& options, event_base* base) {
    FileMode mode(options, base);
    Loop loop{base, [&mode] { mode.reload_all(); }};
    spdlog::info("starting in file mode: segment '{}', {} config file(s), {} metadata file(s)",
                 options.segment, options.config_files.size(), options.metadata.size());
    return serve(base, mode, loop);
}

int run_database(const Options& options, event_base* base) {
    DatabaseMode mode(options, base);
    Loop loop{base, [&mode] { mode.wake(); }};
    try {
        const int rc = serve(base, mode, loop);
        return rc != 0 ? rc : mode.exit_code();
    } catch (const DatabaseUrlError& e) {
        spdlog::critical("{}", e.what());
        return kExitUsage;
    } catch (const WriterError& e) {
        spdlog::critical("{}", e.what());
        return kExitRuntime;
    }
}

int run(const Options& options) {
    std::unique_ptr<event_base, EventBaseFree> base(event_base_new());
    if (!base) {
        spdlog::critical("libevent: cannot create the event loop");
        return kExitRuntime;
    }
    return options.mode == Mode::database ? run_database(options, base.get())
                                          : run_file(options, base.get());
}

}  // namespace

int main(int argc, char** argv) {
    const std::string_view program = argc > 0 ? argv[0] : "yuxi-config-agent";
    const std::vector<std::string_view> args(argv + (argc > 0 ? 1 : 0), argv + argc);
    Options options;
    try {
        options = parse_options(args);
    } catch (const OptionsError& e) {
        std::fprintf(stderr, "yuxi-config-agent: %s\n\n%s", e.what(), usage(program).c_str());
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
    setup_logging(options.log_level);
    try {
        return run(options);
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return kExitRuntime;
    }
}
