// Outside input the agent refused, and the exception boundary of every loop callback.
//
// No document, reply, request or notification may end the agent: a decoder refuses what
// it cannot use (core/decoded.hpp), and reject_document() counts it by source and reason
// (yuxi_config_rejected_documents_total{source,reason} on /metrics) and logs it, at most
// once a minute per source so that a flood cannot fill the log. Every callback the loop
// runs (libevent timers and sockets, hiredis replies, libpq, evhttp) is wrapped in
// guarded(): an exception that escapes one is a bug, and is treated as a refused
// document of that source, with reason "exception". Only FatalError, thrown where the
// agent cannot go on (the segment cannot be written), stops the loop; main then exits 1.
//
// The counts are process-wide, so that a static C callback can reach them without a
// pointer of its own; the agent runs one loop per process.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace yuxi::config::agent {

// The agent cannot go on; the boundary stops the loop.
class FatalError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// `source`: pubsub, stream, snapshot, agents, lease, notify, http, file, ... (a fixed
// word: it becomes a label value). `reason`: malformed, exception, signature, ... (also
// fixed). `detail`: for the log only, never a value or a secret.
void reject_document(std::string_view source, std::string_view reason,
                     std::string_view detail) noexcept;

struct RejectionCount {
    std::string source;
    std::string reason;
    std::uint64_t count = 0;
};

// Every (source, reason) counted so far, sorted.
std::vector<RejectionCount> rejection_counts();

// What the boundary does with a FatalError: main sets it to stop the loop.
void set_fatal_handler(std::function<void(std::string_view)> handler);

// Forgets every count and the handler (tests).
void reset_rejections();

// What guarded() does with what it caught.
void boundary_caught(std::string_view source, std::exception_ptr error) noexcept;

// Runs `fn`; nothing it throws leaves this call.
template <class Fn>
void guarded(std::string_view source, Fn&& fn) noexcept {
    try {
        fn();
    } catch (...) {
        boundary_caught(source, std::current_exception());
    }
}

}  // namespace yuxi::config::agent
