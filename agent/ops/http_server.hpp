// The HTTP surface (docs/design.md, "HTTP"): GET /healthz, /readyz and /metrics, served by evhttp
// on the agent's own loop, so that a scrape sees the segment exactly as published.
//
//   /healthz  200 "ok": the loop runs (this answer comes from it).
//   /readyz   200 "ready" when the mode says so (ModeStatus::ready), else 503 with a
//             one-line reason.
//   /metrics  the exposition of metrics.hpp, Content-Type text/plain; version=0.0.4.
// Other paths 404; methods other than GET and HEAD 405. Nothing else: read-only, and no
// secret or configuration value in any answer.
//
// The updates run on the same loop, so no client may hold it: every socket is
// non-blocking, every answer is built in one go (a few KiB at most), and
//   - a request must arrive whole within kRequestDeadline of the connection's start (or
//     of the previous answer on a kept-alive connection): evhttp's own timeout restarts
//     at every byte, so a slowloris client sending a byte a second would hold its
//     connection forever without this deadline;
//   - evhttp's read and write timeouts (kIoTimeout) drop a client that stops sending or
//     stops reading its answer;
//   - request headers are limited to kMaxHeaderBytes and bodies to kMaxBodyBytes (larger:
//     an error answer and the connection is closed);
//   - at most kMaxConnections are open: a connection over the cap is closed at once,
//     unanswered, and if kMaxOverflow such connections wait to be closed, accepting stops
//     until they are (so descriptors stay bounded however fast clients connect).
// The cap and the deadline are service/http_connections.hpp's (libevent 2.1 has neither).
//
// Not thread-safe: everything runs on the loop that `base` drives.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"
#include "service/http_connections.hpp"

namespace yuxi::config::agent {

inline constexpr std::chrono::seconds kRequestDeadline{5};
inline constexpr std::chrono::seconds kIoTimeout{5};
inline constexpr std::size_t kMaxHeaderBytes = 8192;
inline constexpr std::size_t kMaxBodyBytes = 1024;
inline constexpr std::size_t kMaxConnections = 256;
inline constexpr std::size_t kMaxOverflow = 64;

using service::HttpError;

class HttpServer {
  public:
    using StatusFn = std::function<ModeStatus()>;

    // Registers nothing yet. `base` and `metrics` must outlive this object; `status` is
    // called for each /readyz and /metrics.
    HttpServer(event_base* base, const Metrics& metrics, StatusFn status);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Listens on `address`; port 0 leaves the server off. Throws HttpError naming the
    // address and the reason.
    void start(const ListenAddress& address);

    // The port listened on, 0 when off.
    std::uint16_t port() const noexcept { return port_; }
    // Connections open now (over the cap ones included, until closed).
    std::size_t connections() const noexcept { return connections_.open(); }
    // Connections closed unanswered because of the cap, since the start.
    std::uint64_t refused() const noexcept { return connections_.cap_events(); }

    // Also accepts connections on `listening_fd` (non-blocking, listening; it becomes the
    // server's): the fuzz target and the hostile-input tests feed the server bytes
    // through a Unix socket, which leaves no TIME_WAIT behind however many inputs.
    void accept_on(evutil_socket_t listening_fd);

  private:
    struct HttpFree {
        void operator()(evhttp* h) const noexcept;
    };

    void create();  // the evhttp and its limits, not bound yet
    static bufferevent* on_new_connection(event_base* base, void* self);
    static void on_request(evhttp_request* req, void* self);
    void handle(evhttp_request* req);

    event_base* base_;
    const Metrics& metrics_;
    StatusFn status_;
    // Before http_: destroyed after it, which closes (and uncounts) the open connections.
    service::HttpConnections connections_;
    std::unique_ptr<evhttp, HttpFree> http_;
    evhttp_bound_socket* bound_ = nullptr;
    std::uint16_t port_ = 0;
};

}  // namespace yuxi::config::agent
