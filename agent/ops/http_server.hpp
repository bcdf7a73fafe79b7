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
// libevent 2.1 (Debian 12) has no evhttp_set_max_connections, so the cap counts the
// connections itself: evhttp builds each connection's bufferevent through our callback
// (that counts it), and on the loop's next turn, once evhttp has wrapped it in a
// connection, we register that connection's close callback (that uncounts it). A
// reference on the bufferevent keeps it valid in between.
//
// Not thread-safe: everything runs on the loop that `base` drives.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <unordered_map>

#include "agent/ops/metrics.hpp"
#include "agent/ops/options.hpp"

struct bufferevent;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;

namespace yuxi::config::agent {

inline constexpr std::chrono::seconds kRequestDeadline{5};
inline constexpr std::chrono::seconds kIoTimeout{5};
inline constexpr std::size_t kMaxHeaderBytes = 8192;
inline constexpr std::size_t kMaxBodyBytes = 1024;
inline constexpr std::size_t kMaxConnections = 256;
inline constexpr std::size_t kMaxOverflow = 64;

// The server cannot listen (address in use, no such address, permission).
class HttpError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

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
    std::size_t connections() const noexcept { return conns_.size(); }
    // Connections closed unanswered because of the cap, since the start.
    std::uint64_t refused() const noexcept { return refused_; }

    // Also accepts connections on `listening_fd` (non-blocking, listening; it becomes the
    // server's): the fuzz target and the hostile-input tests feed the server bytes
    // through a Unix socket, which leaves no TIME_WAIT behind however many inputs.
    void accept_on(evutil_socket_t listening_fd);

  private:
    struct Conn;
    struct HttpFree {
        void operator()(evhttp* h) const noexcept;
    };

    void create();  // the evhttp and its limits, not bound yet
    bufferevent* new_connection(event_base* base);
    static bufferevent* on_new_connection(event_base* base, void* self);
    static void on_closed(evhttp_connection* evcon, void* conn);
    static void on_timer(evutil_socket_t fd, short what, void* conn);
    void attach(Conn& conn);
    void forget(Conn& conn);
    static void on_request(evhttp_request* req, void* self);

    void handle(evhttp_request* req);
    void rearm_deadline(evhttp_request* req);
    void update_accepting();

    event_base* base_;
    const Metrics& metrics_;
    StatusFn status_;
    std::unique_ptr<evhttp, HttpFree> http_;
    evhttp_bound_socket* bound_ = nullptr;
    std::uint16_t port_ = 0;
    bool accepting_ = true;
    std::size_t over_cap_ = 0;  // connections over the cap not closed yet
    std::uint64_t refused_ = 0;
    // By the connection's bufferevent: its deadline.
    std::unordered_map<bufferevent*, std::unique_ptr<Conn>> conns_;
};

}  // namespace yuxi::config::agent
