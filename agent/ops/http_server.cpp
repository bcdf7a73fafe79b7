// The HTTP surface: evhttp on the agent's loop, with the limits that keep clients from
// holding it.
#include "agent/ops/http_server.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "agent/ops/rejections.hpp"
#include "core/event_loop.hpp"

namespace yuxi::config::agent {
namespace {

constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

// Which servers answer now, after a failover too: "postgres: host:port" and
// "redis: host:port", one line each, for the ones in use.
std::string serving_lines(const ModeStatus& s) {
    std::string out;
    if (!s.serving_postgres.empty()) {
        out += "postgres: " + s.serving_postgres + "\n";
    }
    if (!s.serving_redis.empty()) {
        out += "redis: " + s.serving_redis + "\n";
    }
    return out;
}

std::uint16_t bound_port(evhttp_bound_socket* bound) {
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

const char* reason_phrase(int code) {
    switch (code) {
        case 200:
            return "OK";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 503:
            return "Service Unavailable";
        default:
            return "Error";
    }
}

void reply(evhttp_request* req, int code, std::string_view body, const char* type = kTextType) {
    evkeyvalq* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evbuffer_add(evhttp_request_get_output_buffer(req), body.data(), body.size());
    evhttp_send_reply(req, code, reason_phrase(code), nullptr);
}

// One line, whatever the mode wrote: a reason must not split the answer or a log line.
std::string one_line(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
    }
    return out;
}

}  // namespace

// One accepted connection, counted from its accept to evhttp's close of it.
struct HttpServer::Conn {
    HttpServer* server = nullptr;
    bufferevent* bev = nullptr;          // evhttp's; referenced by us until attached
    evhttp_connection* evcon = nullptr;  // set once attached
    EventPtr timer;                      // attach, then the request deadline
    bool over_cap = false;
};

void HttpServer::HttpFree::operator()(evhttp* h) const noexcept {
    evhttp_free(h);
}

HttpServer::HttpServer(event_base* base, const Metrics& metrics, StatusFn status)
    : base_(base), metrics_(metrics), status_(std::move(status)) {}

HttpServer::~HttpServer() {
    bound_ = nullptr;  // evhttp_free frees it
    http_.reset();     // closes every attached connection: on_closed forgets it
    // Those not attached yet: evhttp has let go of them, only our reference remains.
    for (auto& [bev, conn] : conns_) {
        conn->timer.reset();
        bufferevent_decref(bev);
    }
    conns_.clear();
}

void HttpServer::start(const ListenAddress& address) {
    if (address.port == 0) {
        spdlog::info("HTTP server off (--http port 0)");
        return;
    }
    create();
    errno = 0;
    bound_ = evhttp_bind_socket_with_handle(http_.get(), address.host.c_str(), address.port);
    if (bound_ == nullptr) {
        const int err = errno;
        throw HttpError("cannot listen on " + address.host + ":" + std::to_string(address.port) +
                        " (--http, YUXI_CONFIG_HTTP): " +
                        (err != 0 ? std::strerror(err) : "the address does not resolve"));
    }
    port_ = bound_port(bound_);
    spdlog::info("HTTP: listening on {}:{} (/healthz, /readyz, /metrics)", address.host, port_);
}

void HttpServer::create() {
    http_.reset(evhttp_new(base_));
    if (!http_) {
        throw HttpError("libevent: cannot create the HTTP server");
    }
    evhttp_set_max_headers_size(http_.get(), static_cast<ev_ssize_t>(kMaxHeaderBytes));
    evhttp_set_max_body_size(http_.get(), static_cast<ev_ssize_t>(kMaxBodyBytes));
    evhttp_set_timeout(http_.get(), static_cast<int>(kIoTimeout.count()));
    // Every method reaches on_request, which answers 405 to all but GET (evhttp's own
    // answer to a method it filters is 501).
    evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                                EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(http_.get(), &HttpServer::on_new_connection, this);
    evhttp_set_gencb(http_.get(), &HttpServer::on_request, this);
}

void HttpServer::accept_on(evutil_socket_t listening_fd) {
    if (!http_) {
        create();
    }
    if (evhttp_accept_socket(http_.get(), listening_fd) != 0) {
        throw HttpError("libevent: cannot accept on the given socket");
    }
}

bufferevent* HttpServer::on_new_connection(event_base* base, void* self) {
    bufferevent* bev = nullptr;
    guarded("http", [&] { bev = static_cast<HttpServer*>(self)->new_connection(base); });
    return bev;
}

bufferevent* HttpServer::new_connection(event_base* base) {
    auto& me = *this;
    auto conn = std::make_unique<Conn>();
    // On failure evhttp makes a bufferevent of its own: that one connection goes uncounted.
    bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == nullptr) {
        return nullptr;
    }
    conn->server = &me;
    conn->bev = bev;
    conn->over_cap = me.conns_.size() >= kMaxConnections;
    conn->timer.reset(evtimer_new(base, &HttpServer::on_timer, conn.get()));
    const timeval now{};
    if (!conn->timer || evtimer_add(conn->timer.get(), &now) != 0) {
        return bev;  // uncounted, as above
    }
    // Valid until attach(), even if evhttp frees the connection first.
    bufferevent_incref(bev);
    if (conn->over_cap) {
        ++me.over_cap_;
        ++me.refused_;
        if (me.refused_ == 1 || me.refused_ % 1000 == 0) {
            spdlog::warn("HTTP: {} connections open, the limit; closing new ones ({} so far)",
                         kMaxConnections, me.refused_);
        }
    }
    me.conns_.emplace(bev, std::move(conn));
    me.update_accepting();
    return bev;
}

// evhttp has made the connection around our bufferevent, with the connection as the
// callbacks' argument: register its close callback, and start its deadline (at once when
// it is over the cap).
void HttpServer::attach(Conn& conn) {
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
    evhttp_connection_set_closecb(conn.evcon, &HttpServer::on_closed, &conn);
    bufferevent_decref(bev);
    if (conn.over_cap) {
        // Failed as evhttp's own timeout would: dropped unanswered. Deferred, so that
        // evhttp frees it outside this callback.
        (void)bufferevent_trigger_event(bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT,
                                        BEV_TRIG_DEFER_CALLBACKS);
        return;
    }
    const timeval tv = to_timeval(kRequestDeadline);
    (void)evtimer_add(conn.timer.get(), &tv);
}

void HttpServer::forget(Conn& conn) {
    if (conn.over_cap) {
        --over_cap_;
    }
    conns_.erase(conn.bev);
    update_accepting();
}

void HttpServer::on_closed(evhttp_connection*, void* p) {
    guarded("http", [&] {
        auto& conn = *static_cast<Conn*>(p);
        conn.server->forget(conn);
    });
}

void HttpServer::on_timer(evutil_socket_t, short, void* p) {
    guarded("http", [&] {
        auto& conn = *static_cast<Conn*>(p);
        if (conn.evcon == nullptr) {
            conn.server->attach(conn);
            return;
        }
        // The request deadline passed: fail the connection as above.
        (void)bufferevent_trigger_event(conn.bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT,
                                        BEV_TRIG_DEFER_CALLBACKS);
    });
}

void HttpServer::on_request(evhttp_request* req, void* self) {
    auto& me = *static_cast<HttpServer*>(self);
    bool answered = false;
    guarded("http", [&] {
        me.rearm_deadline(req);
        me.handle(req);
        answered = true;
    });
    if (!answered) {
        // Every request gets an answer, or evhttp would keep its connection forever.
        evhttp_send_reply(req, 500, "Internal Server Error", nullptr);
    }
}

void HttpServer::handle(evhttp_request* req) {
    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
    const char* raw_path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
    const std::string_view path = raw_path != nullptr ? raw_path : "";
    if (path != "/healthz" && path != "/readyz" && path != "/metrics") {
        reply(req, 404, "not found\n");
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        reply(req, 405, "method not allowed\n");
        return;
    }
    if (path == "/healthz") {
        reply(req, 200, "ok\n");
        return;
    }
    const ModeStatus status = status_();
    if (path == "/readyz") {
        if (status.ready) {
            reply(req, 200, "ready\n" + serving_lines(status));
        } else {
            reply(req, 503,
                  "not ready: " + one_line(status.not_ready) + "\n" + serving_lines(status));
        }
        return;
    }
    reply(req, 200, metrics_.render(status), kMetricsType);
}

// A kept-alive connection has kRequestDeadline for its next request, from this answer.
void HttpServer::rearm_deadline(evhttp_request* req) {
    evhttp_connection* evcon = evhttp_request_get_connection(req);
    if (evcon == nullptr) {
        return;
    }
    const auto it = conns_.find(evhttp_connection_get_bufferevent(evcon));
    if (it == conns_.end() || it->second->evcon == nullptr || it->second->over_cap) {
        return;
    }
    const timeval tv = to_timeval(kRequestDeadline);
    (void)evtimer_add(it->second->timer.get(), &tv);
}

// Stops accepting while kMaxOverflow connections over the cap wait to be closed, so that
// a flood of connections cannot run the process out of descriptors.
void HttpServer::update_accepting() {
    if (bound_ == nullptr) {
        return;
    }
    const bool want = over_cap_ < kMaxOverflow;
    if (want == accepting_) {
        return;
    }
    evconnlistener* listener = evhttp_bound_socket_get_listener(bound_);
    if (listener == nullptr) {
        return;
    }
    if (want ? evconnlistener_enable(listener) == 0 : evconnlistener_disable(listener) == 0) {
        accepting_ = want;
    }
}

}  // namespace yuxi::config::agent
