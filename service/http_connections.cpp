// Connection cap and request deadlines for evhttp (http_connections.hpp).
#include "service/http_connections.hpp"

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "core/event_loop.hpp"

namespace yuxi::config::service {
namespace {

// Fails a connection as evhttp's own timeout would: dropped unanswered. Deferred, so that
// evhttp frees it outside the running callback.
void fail(bufferevent* bev) {
    (void)bufferevent_trigger_event(bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT,
                                    BEV_TRIG_DEFER_CALLBACKS);
}

}  // namespace

evhttp* make_evhttp(event_base* base, const EvhttpSetup& setup) {
    evhttp* http = evhttp_new(base);
    if (http == nullptr) {
        throw HttpError("libevent: cannot create the HTTP server");
    }
    evhttp_set_max_headers_size(http, static_cast<ev_ssize_t>(setup.max_header_bytes));
    evhttp_set_max_body_size(http, static_cast<ev_ssize_t>(setup.max_body_bytes));
    const timeval io = to_timeval(setup.io_timeout);
    evhttp_set_timeout_tv(http, &io);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                         EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(http, setup.on_connection, setup.arg);
    evhttp_set_gencb(http, setup.on_request, setup.arg);
    return http;
}

std::uint16_t bound_port(evhttp_bound_socket* bound) noexcept {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&ss), &len) !=
        0) {
        return 0;
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

const char* reason_phrase(int code) noexcept {
    switch (code) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 413:
            return "Payload Too Large";
        case 415:
            return "Unsupported Media Type";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return "Error";
    }
}

// One accepted connection, counted from its accept to evhttp's close of it.
struct HttpConnections::Conn {
    HttpConnections* owner = nullptr;
    bufferevent* bev = nullptr;          // evhttp's; referenced by us until attached
    evhttp_connection* evcon = nullptr;  // set once attached
    EventPtr timer;                      // attach, then the request deadline
    bool doomed = false;
};

HttpConnections::HttpConnections(Limits limits, Guard guard, OnCap on_cap)
    : limits_(limits), guard_(std::move(guard)), on_cap_(std::move(on_cap)) {}

HttpConnections::~HttpConnections() {
    // Those not attached yet: evhttp has let go of them, only our reference remains.
    for (auto& [bev, conn] : conns_) {
        conn->timer.reset();
        if (conn->evcon == nullptr) {
            bufferevent_decref(bev);
        }
    }
    conns_.clear();
}

void HttpConnections::listen_on(evhttp_bound_socket* bound) noexcept {
    bound_ = bound;
    accepting_ = true;
    if (bound_ != nullptr) {
        update_accepting();
    }
}

bufferevent* HttpConnections::track(event_base* base, bufferevent* bev, bool doomed) {
    auto conn = std::make_unique<Conn>();
    conn->owner = this;
    conn->bev = bev;
    const bool over =
        limits_.at_cap == AtCap::close_new && conns_.size() >= limits_.max_connections;
    conn->doomed = doomed || over;
    conn->timer.reset(evtimer_new(base, &HttpConnections::on_timer, conn.get()));
    const timeval now{};
    if (!conn->timer || evtimer_add(conn->timer.get(), &now) != 0) {
        return bev;  // uncounted, and closed by evhttp's timeouts only: the best left to do
    }
    bufferevent_incref(bev);  // valid until attach(), even if evhttp frees it first
    if (conn->doomed) {
        ++doomed_open_;
    }
    conns_.emplace(bev, std::move(conn));
    if (over) {
        ++cap_events_;
        if (on_cap_) {
            on_cap_();
        }
    }
    update_accepting();
    return bev;
}

// evhttp has made the connection around our bufferevent, with the connection as the
// callbacks' argument: register its close callback, and start its deadline (or fail it at
// once when it is doomed).
void HttpConnections::attach(Conn& conn) {
    bufferevent_event_cb eventcb = nullptr;
    void* arg = nullptr;
    bufferevent_getcb(conn.bev, nullptr, nullptr, &eventcb, &arg);
    bufferevent* bev = conn.bev;
    if (eventcb == nullptr || arg == nullptr) {
        forget(conn);  // evhttp freed it already (bufferevent_free clears the callbacks)
        bufferevent_decref(bev);
        return;
    }
    conn.evcon = static_cast<evhttp_connection*>(arg);
    evhttp_connection_set_closecb(conn.evcon, &HttpConnections::on_closed, &conn);
    // An answer may leave in more than one segment or TLS record (headers, body): with
    // Nagle's algorithm the second waits for the client's delayed ACK, 40 ms on Linux.
    const int one = 1;
    (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bufferevent_decref(bev);
    if (conn.doomed) {
        fail(bev);
        return;
    }
    const timeval tv = to_timeval(limits_.request_deadline);
    (void)evtimer_add(conn.timer.get(), &tv);
}

void HttpConnections::forget(Conn& conn) {
    if (conn.doomed) {
        --doomed_open_;
    }
    conns_.erase(conn.bev);
    update_accepting();
}

void HttpConnections::on_closed(evhttp_connection* evcon, void* p) {
    auto& conn = *static_cast<Conn*>(p);
    HttpConnections& me = *conn.owner;
    me.guard_("close", [&] {
        evhttp_connection_set_closecb(evcon, nullptr, nullptr);  // once, whatever evhttp does
        me.forget(conn);
    });
}

void HttpConnections::on_timer(evutil_socket_t, short, void* p) {
    auto& conn = *static_cast<Conn*>(p);
    conn.owner->guard_("connection timer", [&] {
        if (conn.evcon == nullptr) {
            conn.owner->attach(conn);
            return;
        }
        fail(conn.bev);  // the request deadline passed
    });
}

void HttpConnections::rearm(evhttp_request* req) {
    evhttp_connection* evcon = evhttp_request_get_connection(req);
    if (evcon == nullptr) {
        return;
    }
    const auto it = conns_.find(evhttp_connection_get_bufferevent(evcon));
    if (it == conns_.end() || it->second->evcon == nullptr || it->second->doomed) {
        return;
    }
    const timeval tv = to_timeval(limits_.request_deadline);
    (void)evtimer_add(it->second->timer.get(), &tv);
}

void HttpConnections::stop_accepting() noexcept {
    stopped_ = true;
    if (bound_ != nullptr) {
        if (evconnlistener* l = evhttp_bound_socket_get_listener(bound_)) {
            (void)evconnlistener_disable(l);
        }
    }
    accepting_ = false;
}

void HttpConnections::update_accepting() {
    if (bound_ == nullptr || stopped_) {
        return;
    }
    const bool want = limits_.at_cap == AtCap::close_new ? doomed_open_ < limits_.max_overflow
                                                         : conns_.size() < limits_.max_connections;
    if (want == accepting_) {
        return;
    }
    evconnlistener* listener = evhttp_bound_socket_get_listener(bound_);
    if (listener == nullptr) {
        return;
    }
    if (want ? evconnlistener_enable(listener) != 0 : evconnlistener_disable(listener) != 0) {
        return;
    }
    accepting_ = want;
    if (!want && limits_.at_cap == AtCap::wait) {
        ++cap_events_;
        if (on_cap_) {
            on_cap_();
        }
    }
}

}  // namespace yuxi::config::service
