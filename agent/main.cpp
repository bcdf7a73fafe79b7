// yuxi-config-agent: flags, logging, signals and the event loop; the work is in the modes.
#include <event2/event.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <string_view>
#include <vector>

#include "file_mode.hpp"
#include "options.hpp"

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
    FileMode* mode;
};

void on_stop_signal(evutil_socket_t sig, short, void* arg) {
    auto* loop = static_cast<Loop*>(arg);
    spdlog::info("signal {}: stopping", sig);
    event_base_loopbreak(loop->base);
}

void on_hup(evutil_socket_t, short, void* arg) {
    static_cast<Loop*>(arg)->mode->reload_all();
}

struct EventBaseFree {
    void operator()(event_base* b) const noexcept { event_base_free(b); }
};
struct EventFree {
    void operator()(event* e) const noexcept { event_free(e); }
};

int run(const Options& options) {
    std::unique_ptr<event_base, EventBaseFree> base(event_base_new());
    if (!base) {
        spdlog::critical("libevent: cannot create the event loop");
        return kExitRuntime;
    }
    FileMode mode(options, base.get());
    Loop loop{base.get(), &mode};
    std::vector<std::unique_ptr<event, EventFree>> signals;
    for (const int sig : {SIGTERM, SIGINT}) {
        signals.emplace_back(evsignal_new(base.get(), sig, on_stop_signal, &loop));
    }
    signals.emplace_back(evsignal_new(base.get(), SIGHUP, on_hup, &loop));
    for (const auto& ev : signals) {
        if (!ev || event_add(ev.get(), nullptr) != 0) {
            spdlog::critical("libevent: cannot handle signals");
            return kExitRuntime;
        }
    }
    spdlog::info("starting in file mode: segment '{}', {} config file(s), {} metadata file(s)",
                 options.segment, options.config_files.size(), options.metadata.size());
    mode.start();
    if (event_base_dispatch(base.get()) < 0) {
        spdlog::critical("libevent: the event loop failed");
        mode.stop();
        return kExitRuntime;
    }
    mode.stop();
    return 0;
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
    if (options.mode == Mode::database) {
        std::fputs("yuxi-config-agent: database mode is not in this build yet; use --mode=file\n",
                   stderr);
        return kExitUsage;
    }
    setup_logging(options.log_level);
    try {
        return run(options);
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return kExitRuntime;
    }
}
