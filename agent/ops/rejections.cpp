// Counting refused input, and the loop's exception boundary.
#include "agent/ops/rejections.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include "core/text.hpp"

namespace yuxi::config::agent {
namespace {

constexpr std::chrono::seconds kLogInterval{60};

struct SourceLog {
    std::chrono::steady_clock::time_point last{};
    bool logged = false;
    std::uint64_t suppressed = 0;
};

struct Registry {
    std::mutex mutex;
    std::map<std::pair<std::string, std::string>, std::uint64_t> counts;
    std::map<std::string, SourceLog, std::less<>> logs;
    std::function<void(std::string_view)> fatal;
};

Registry& registry() {
    static Registry r;
    return r;
}

}  // namespace

void reject_document(std::string_view source, std::string_view reason,
                     std::string_view detail) noexcept {
    try {
        Registry& r = registry();
        std::uint64_t suppressed = 0;
        {
            const std::lock_guard lock(r.mutex);
            ++r.counts[{std::string(source), std::string(reason)}];
            SourceLog& log = r.logs[std::string(source)];
            const auto now = std::chrono::steady_clock::now();
            if (log.logged && now - log.last < kLogInterval) {
                ++log.suppressed;
                return;
            }
            suppressed = std::exchange(log.suppressed, 0);
            log.last = now;
            log.logged = true;
        }
        spdlog::warn("refused a {} document ({}): {}{}", source, reason, printable(detail, 300),
                     suppressed == 0 ? std::string()
                                     : fmt::format(" ({} more from {} in the last minute)",
                                                   suppressed, source));
    } catch (...) {
        // Counting must never be the thing that fails: out of memory here is dropped.
    }
}

std::vector<RejectionCount> rejection_counts() {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    std::vector<RejectionCount> out;
    out.reserve(r.counts.size());
    for (const auto& [key, n] : r.counts) {
        out.push_back({key.first, key.second, n});
    }
    return out;
}

void set_fatal_handler(std::function<void(std::string_view)> handler) {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    r.fatal = std::move(handler);
}

void reset_rejections() {
    Registry& r = registry();
    const std::lock_guard lock(r.mutex);
    r.counts.clear();
    r.logs.clear();
    r.fatal = nullptr;
}

void boundary_caught(std::string_view source, std::exception_ptr error) noexcept {
    try {
        std::rethrow_exception(std::move(error));
    } catch (const FatalError& e) {
        std::function<void(std::string_view)> fatal;
        {
            const std::lock_guard lock(registry().mutex);
            fatal = registry().fatal;
        }
        spdlog::critical("{}", e.what());
        try {
            if (fatal) {
                fatal(e.what());
            }
        } catch (...) {
            std::terminate();  // cannot stop the loop: the process must not go on
        }
    } catch (const std::exception& e) {
        reject_document(source, "exception", e.what());
    } catch (...) {
        reject_document(source, "exception", "an exception of an unknown type");
    }
}

}  // namespace yuxi::config::agent
