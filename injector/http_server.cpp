// The HTTP(S) server: evhttp over bufferevent_openssl, with the limits that keep clients
// from holding the loop or its memory.
#include "http_server.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/ssl.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <functional>

#include "core/timeval.hpp"
#include "guarded.hpp"
#include "tls_context.hpp"

namespace yuxi::config::injector {
namespace {

constexpr const char* kTextType = "text/plain; charset=utf-8";
constexpr const char* kMetricsType = "text/plain; version=0.0.4; charset=utf-8";

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

void HttpServer::HttpFree::operator()(evhttp* h) const noexcept {
    evhttp_free(h);
}

HttpServer::HttpServer(event_base* base, const TlsContext* tls, Handlers handlers,
                       HttpLimits limits, Metrics& metrics)
    : base_(base),
      tls_(tls),
      handlers_(std::move(handlers)),
      limits_(limits),
      metrics_(metrics),
      connections_(
          {limits.request_timeout, limits.max_connections, service::HttpConnections::AtCap::wait},
          [&metrics](const char* what, const std::function<void()>& body) {
              (void)guarded(metrics, what, body);
          },
          [this] {
              metrics_.count_connections_at_limit();
              const std::uint64_t n = connections_.cap_events();
              if (n == 1 || n % 1000 == 0) {
                  spdlog::warn(
                      "{} connections open, the limit (--max-connections): new ones "
                      "wait until one closes ({} times so far)",
                      limits_.max_connections, n);
              }
          }) {}

HttpServer::~HttpServer() {
    bound_ = nullptr;  // evhttp_free frees it
    http_.reset();     // closes every attached connection, which uncounts it
}

void HttpServer::start(const ListenAddress& address, std::string_view flag) {
    service::EvhttpSetup setup;
    setup.max_header_bytes = kMaxHeaderBytes;
    setup.max_body_bytes = limits_.max_body_bytes;
    setup.io_timeout = limits_.request_timeout;
    setup.on_connection = &HttpServer::on_new_connection;
    setup.on_request = &HttpServer::on_request;
    setup.arg = this;
    http_.reset(service::make_evhttp(base_, setup));
    errno = 0;
    bound_ = evhttp_bind_socket_with_handle(http_.get(), address.host.c_str(), address.port);
    if (bound_ == nullptr) {
        const int err = errno;
        throw HttpError("cannot listen on " + address.host + ":" + std::to_string(address.port) +
                        " (" + std::string(flag) +
                        "): " + (err != 0 ? std::strerror(err) : "the address does not resolve"));
    }
    port_ = service::bound_port(bound_);
    connections_.listen_on(bound_);
}

void HttpServer::stop_accepting() noexcept {
    connections_.stop_accepting();
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
    if (without_tls) {
        spdlog::error("OpenSSL cannot make a TLS session: closing a connection unanswered");
    }
    return connections_.track(base, bev, without_tls);
}

void HttpServer::on_request(evhttp_request* req, void* self) noexcept {
    auto& me = *static_cast<HttpServer*>(self);
    bool replied = false;
    const bool ok = guarded(me.metrics_, "request", [&] {
        me.connections_.rearm(req);
        me.handle(req, replied);
    });
    if (!ok && !replied) {
        // The request must still get an answer, or its connection hangs to the deadline.
        guarded(me.metrics_, "error reply", [&] {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", kTextType);
            evbuffer_add_printf(evhttp_request_get_output_buffer(req), "internal error\n");
            evhttp_send_reply(req, 500, service::reason_phrase(500), nullptr);
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
        evhttp_send_reply(req, code, service::reason_phrase(code), nullptr);
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

}  // namespace yuxi::config::injector
