// What an evhttp server of libevent 2.1 (Debian 12) lacks, for a service whose loop no
// client may hold: a cap on open connections and a deadline per request.
//
//   - A request must arrive whole within `request_deadline` of its connection's accept (or
//     of the previous answer on a kept-alive connection): evhttp's own timeout restarts at
//     every byte, so a client sending a byte a second would otherwise hold its connection.
//   - At most `max_connections` are open. At the cap, by `at_cap`: `close_new` closes new
//     connections unanswered at once, and stops accepting while `max_overflow` of them wait
//     to be closed (the agent: descriptors stay bounded however fast clients connect);
//     `wait` stops accepting until one closes, so new connections wait in the kernel's
//     listen backlog (the injector: the API server's call is slower, not refused, and a TLS
//     handshake is never cut short).
//
// libevent 2.1 has no evhttp_set_max_connections, so connections are counted here: evhttp
// makes each connection's bufferevent through the service's callback, which hands it to
// track(); on the loop's next turn, once evhttp has wrapped it in a connection, its close
// callback is registered (that uncounts it). A reference on the bufferevent keeps it valid
// in between. Not thread-safe: everything runs on one loop.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <unordered_map>

struct bufferevent;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;

namespace yuxi::config::service {

// The server cannot listen (address in use, no such address, permission).
class HttpError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// An evhttp as both services set one up: header and body limits, evhttp's own read and
// write timeout, every method passed to `on_request` (which answers 405 with Allow itself:
// evhttp's answer to a method it filters is 501, without Allow), and connections' buffer
// events made by `on_connection` (so that HttpConnections can count them). Throws HttpError.
struct EvhttpSetup {
    std::size_t max_header_bytes = 8192;
    std::size_t max_body_bytes = 1024;
    std::chrono::milliseconds io_timeout{5000};
    bufferevent* (*on_connection)(event_base*, void*) = nullptr;
    void (*on_request)(evhttp_request*, void*) = nullptr;
    void* arg = nullptr;
};
evhttp* make_evhttp(event_base* base, const EvhttpSetup& setup);

// The port a bound evhttp socket listens on (after binding port 0), or 0.
std::uint16_t bound_port(evhttp_bound_socket* bound) noexcept;

// The reason phrase of a status code the services send.
const char* reason_phrase(int code) noexcept;

class HttpConnections {
  public:
    enum class AtCap { close_new, wait };
    struct Limits {
        std::chrono::milliseconds request_deadline{5000};
        std::size_t max_connections = 256;
        AtCap at_cap = AtCap::close_new;
        std::size_t max_overflow = 64;  // close_new: closing ones that pause accepting
    };
    // Runs one of libevent's callbacks inside the service's exception boundary.
    using Guard = std::function<void(const char* what, const std::function<void()>& body)>;
    // Told each time the cap bites: a connection closed (close_new) or accepting paused
    // (wait); the service logs and counts it.
    using OnCap = std::function<void()>;

    HttpConnections(Limits limits, Guard guard, OnCap on_cap);
    // Drops the references to connections evhttp has not wrapped yet; destroy the evhttp
    // first (it closes the others, which uncounts them here).
    ~HttpConnections();
    HttpConnections(const HttpConnections&) = delete;
    HttpConnections& operator=(const HttpConnections&) = delete;

    // The listener to pause and resume; null before binding.
    void listen_on(evhttp_bound_socket* bound) noexcept;

    // Counts `bev`, a connection's new bufferevent (plain or TLS), made in evhttp's bevcb on
    // `base`; returns it. `doomed`: close it unanswered once evhttp has wrapped it (also
    // done to connections over a close_new cap).
    bufferevent* track(event_base* base, bufferevent* bev, bool doomed = false);

    // A kept-alive connection gets `request_deadline` again, from this answer.
    void rearm(evhttp_request* req);

    // Accepts no new connection (shutdown); open ones are still served.
    void stop_accepting() noexcept;

    std::size_t open() const noexcept { return conns_.size(); }
    // Connections closed unanswered at a close_new cap, or pauses at a wait cap, so far.
    std::uint64_t cap_events() const noexcept { return cap_events_; }

  private:
    struct Conn;
    static void on_closed(evhttp_connection* evcon, void* conn);
    static void on_timer(evutil_socket_t fd, short what, void* conn);
    void attach(Conn& conn);
    void forget(Conn& conn);
    void update_accepting();

    Limits limits_;
    Guard guard_;
    OnCap on_cap_;
    evhttp_bound_socket* bound_ = nullptr;
    bool accepting_ = true;
    bool stopped_ = false;
    std::size_t doomed_open_ = 0;  // connections to close that are not closed yet
    std::uint64_t cap_events_ = 0;
    // By the connection's bufferevent: its deadline.
    std::unordered_map<bufferevent*, std::unique_ptr<Conn>> conns_;
};

}  // namespace yuxi::config::service
