// The HTTP(S) server: evhttp over bufferevent_openssl, with the limits that keep clients
// from holding the loop or its memory.
#include "http_server.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "guarded.hpp"
#include "tls_context.hpp"

namespace yuxi::config::injector {
namespace {

constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

struct EventFree {
    void operator()(event* e) const noexcept { event_free(e); }
};

timeval to_timeval(std::chrono::milliseconds d) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(d.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
    return tv;
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

// The media type of a Content-Type value, lower case, without parameters.
std::string media_type(const char* value) {
    std::string out;
    for (const char* p = value; p != nullptr && *p != '\0' && *p != ';'; ++p) {
        if (*p != ' ' && *p != '\t') {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
        }
    }
    return out;
}

}  // namespace

// One accepted connection, counted from its accept to evhttp's close of it.
struct HttpServer::Conn {
    HttpServer* server = nullptr;
    bufferevent* bev = nullptr;               // evhttp's; referenced by us until attached
    evhttp_connection* evcon = nullptr;       // set once attached
    std::unique_ptr<event, EventFree> timer;  // attach, then the request deadline
    bool doomed = false;                      // without TLS: closed unanswered at attach
};

void HttpServer::HttpFree::operator()(evhttp* h) const noexcept {
    evhttp_free(h);
}

HttpServer::HttpServer(event_base* base, const TlsContext* tls, Handlers handlers,
                       HttpLimits limits, Metrics& metrics)
    : base_(base), tls_(tls), handlers_(std::move(handlers)), limits_(limits), metrics_(metrics) {}

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

void HttpServer::start(const ListenAddress& address, std::string_view flag) {
    http_.reset(evhttp_new(base_));
    if (!http_) {
        throw HttpError("libevent: cannot create the HTTP server");
    }
    evhttp_set_max_headers_size(http_.get(), static_cast<ev_ssize_t>(kMaxHeaderBytes));
    evhttp_set_max_body_size(http_.get(), static_cast<ev_ssize_t>(limits_.max_body_bytes));
    const timeval io = to_timeval(limits_.request_timeout);
    evhttp_set_timeout_tv(http_.get(), &io);
    // Every method reaches on_request, which answers 405 itself (evhttp's own answer to a
    // method it filters is 501, with no Allow).
    evhttp_set_allowed_methods(http_.get(), EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                                EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                                EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                                EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(http_.get(), &HttpServer::on_new_connection, this);
    evhttp_set_gencb(http_.get(), &HttpServer::on_request, this);
    errno = 0;
    bound_ = evhttp_bind_socket_with_handle(http_.get(), address.host.c_str(), address.port);
    if (bound_ == nullptr) {
        const int err = errno;
        throw HttpError("cannot listen on " + address.host + ":" + std::to_string(address.port) +
                        " (" + std::string(flag) +
                        "): " + (err != 0 ? std::strerror(err) : "the address does not resolve"));
    }
    port_ = bound_port(bound_);
}

void HttpServer::stop_accepting() noexcept {
    stopped_ = true;
    if (bound_ != nullptr) {
        if (evconnlistener* l = evhttp_bound_socket_get_listener(bound_)) {
            (void)evconnlistener_disable(l);
        }
    }
    accepting_ = false;
}

bufferevent* HttpServer::on_new_connection(event_base* base, void* self) noexcept {
    auto& me = *static_cast<HttpServer*>(self);
    bufferevent* bev = nullptr;
    guarded(me.metrics_, "accept", [&] { bev = me.new_connection(base); });
    return bev;
}

bufferevent* HttpServer::new_connection(event_base* base) {
    SSL* ssl = tls_ != nullptr ? tls_->new_ssl() : nullptr;
    bufferevent* bev = nullptr;
    if (ssl != nullptr) {
        // The bufferevent owns the SSL: BEV_OPT_CLOSE_ON_FREE frees it with the socket.
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev == nullptr) {
            SSL_free(ssl);
        } else {
            // HTTP knows where each message ends; a client that closes without TLS's
            // close_notify loses nothing.
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        }
    }
    const bool without_tls = tls_ != nullptr && bev == nullptr;
    if (bev == nullptr) {
        // Plain: the metrics server; or, on the HTTPS port when OpenSSL has no memory left
        // for a session, a socket to close unanswered (evhttp would otherwise make a plain
        // one of its own and serve HTTP there).
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev == nullptr) {
            return nullptr;  // evhttp fails the connection itself
        }
    }
    auto conn = std::make_unique<Conn>();
    conn->server = this;
    conn->bev = bev;
    conn->doomed = without_tls;
    conn->timer.reset(evtimer_new(base, &HttpServer::on_timer, conn.get()));
    const timeval now{};
    if (!conn->timer || evtimer_add(conn->timer.get(), &now) != 0) {
        // Uncounted, and closed by evhttp's timeouts only: the best left to do.
        return bev;
    }
    bufferevent_incref(bev);  // valid until attach(), even if evhttp frees it first
    if (without_tls) {
        spdlog::error("OpenSSL cannot make a TLS session: closing a connection unanswered");
    }
    conns_.emplace(bev, std::move(conn));
    update_accepting();
    return bev;
}

// evhttp has made the connection around our bufferevent, with the connection as the
// callbacks' argument: register its close callback, and start its deadline (or fail it
// at once when it is doomed).
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
    // An answer leaves in more than one TLS record (headers, body): with Nagle's algorithm
    // the second waits for the client's delayed ACK, 40 ms on Linux, on every review.
    const int one = 1;
    (void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bufferevent_decref(bev);
    if (conn.doomed) {
        // Failed as evhttp's own timeout would: dropped unanswered. Deferred, so that
        // evhttp frees it outside this callback.
        (void)bufferevent_trigger_event(bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT,
                                        BEV_TRIG_DEFER_CALLBACKS);
        return;
    }
    const timeval tv = to_timeval(limits_.request_timeout);
    (void)evtimer_add(conn.timer.get(), &tv);
}

void HttpServer::forget(Conn& conn) {
    conns_.erase(conn.bev);
    update_accepting();
}

void HttpServer::on_closed(evhttp_connection* evcon, void* p) noexcept {
    auto& conn = *static_cast<Conn*>(p);
    HttpServer& me = *conn.server;
    guarded(me.metrics_, "close", [&] {
        evhttp_connection_set_closecb(evcon, nullptr, nullptr);  // once, whatever evhttp does
        me.forget(conn);
    });
}

void HttpServer::on_timer(evutil_socket_t, short, void* p) noexcept {
    auto& conn = *static_cast<Conn*>(p);
    guarded(conn.server->metrics_, "connection timer", [&] {
        if (conn.evcon == nullptr) {
            conn.server->attach(conn);
            return;
        }
        // The request deadline passed: fail the connection as above.
        (void)bufferevent_trigger_event(conn.bev, BEV_EVENT_READING | BEV_EVENT_TIMEOUT,
                                        BEV_TRIG_DEFER_CALLBACKS);
    });
}

void HttpServer::on_request(evhttp_request* req, void* self) noexcept {
    auto& me = *static_cast<HttpServer*>(self);
    bool replied = false;
    const bool ok = guarded(me.metrics_, "request", [&] {
        me.rearm_deadline(req);
        me.handle(req, replied);
    });
    if (!ok && !replied) {
        // The request must still get an answer, or its connection hangs to the deadline.
        guarded(me.metrics_, "error reply", [&] {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", kTextType);
            evbuffer_add_printf(evhttp_request_get_output_buffer(req), "internal error\n");
            evhttp_send_reply(req, 500, reason_phrase(500), nullptr);
            me.metrics_.count_request("other", 500);
        });
    }
}

void HttpServer::handle(evhttp_request* req, bool& replied) {
    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
    const char* raw_path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
    const std::string_view path = raw_path != nullptr ? raw_path : "";
    const evhttp_cmd_type method = evhttp_request_get_command(req);
    evkeyvalq* out = evhttp_request_get_output_headers(req);
    std::string_view handler = "other";
    const auto reply = [&](int code, std::string_view body, const char* type) {
        evhttp_add_header(out, "Content-Type", type);
        evhttp_add_header(out, "Cache-Control", "no-store");
        evbuffer_add(evhttp_request_get_output_buffer(req), body.data(), body.size());
        evhttp_send_reply(req, code, reason_phrase(code), nullptr);
        replied = true;
        metrics_.count_request(handler, code);
    };

    if (path == "/mutate" && handlers_.mutate) {
        handler = "mutate";
        if (method != EVHTTP_REQ_POST) {
            metrics_.count_invalid("method");
            evhttp_add_header(out, "Allow", "POST");
            reply(405, "use POST\n", kTextType);
            return;
        }
        const char* type =
            evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
        if (media_type(type) != "application/json") {
            metrics_.count_invalid("content_type");
            reply(415, "yuxi-config-injector: expected Content-Type: application/json\n",
                  kTextType);
            return;
        }
        evbuffer* in = evhttp_request_get_input_buffer(req);
        const std::size_t n = evbuffer_get_length(in);
        const auto* bytes = n == 0 ? nullptr : evbuffer_pullup(in, static_cast<ev_ssize_t>(n));
        const HttpAnswer a =
            handlers_.mutate(std::string_view(reinterpret_cast<const char*>(bytes), n));
        reply(a.code, a.body, std::string(a.content_type).c_str());
        return;
    }
    if (path != "/healthz" && path != "/readyz" && path != "/metrics") {
        reply(404, "not found\n", kTextType);
        return;
    }
    handler = path.substr(1);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        evhttp_add_header(out, "Allow", "GET, HEAD");
        reply(405, "method not allowed\n", kTextType);
        return;
    }
    if (path == "/healthz") {
        reply(200, "ok\n", kTextType);
    } else if (path == "/readyz") {
        const HttpAnswer a = handlers_.readyz();
        reply(a.code, a.body, kTextType);
    } else {
        reply(200, handlers_.metrics(), kMetricsType);
    }
}

// A kept-alive connection has --request-timeout for its next request, from this answer.
void HttpServer::rearm_deadline(evhttp_request* req) {
    evhttp_connection* evcon = evhttp_request_get_connection(req);
    if (evcon == nullptr) {
        return;
    }
    const auto it = conns_.find(evhttp_connection_get_bufferevent(evcon));
    if (it == conns_.end() || it->second->evcon == nullptr || it->second->doomed) {
        return;
    }
    const timeval tv = to_timeval(limits_.request_timeout);
    (void)evtimer_add(it->second->timer.get(), &tv);
}

// Accepts while fewer than --max-connections are open: the rest wait in the backlog, so
// that a flood of connections runs the process out of neither descriptors nor memory.
void HttpServer::update_accepting() {
    if (bound_ == nullptr || stopped_) {
        return;
    }
    const bool want = conns_.size() < limits_.max_connections;
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
    if (!want) {
        metrics_.count_connections_at_limit();
        if (++pauses_ == 1 || pauses_ % 1000 == 0) {
            spdlog::warn(
                "{} connections open, the limit (--max-connections): new ones wait "
                "until one closes ({} times so far)",
                limits_.max_connections, pauses_);
        }
    }
}

}  // namespace yuxi::config::injector
