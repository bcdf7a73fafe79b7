// The injector's HTTP(S) server: libevent's evhttp, over bufferevent_openssl for the
// webhook port and plain for the optional metrics port.
//
//   POST /mutate    the webhook (HTTPS only): webhook.hpp's answer
//   GET  /healthz   200 "ok": the loop answers
//   GET  /readyz    200 "ready", or 503 with a one-line reason
//   GET  /metrics   the exposition of metrics.hpp
// Other paths 404; other methods 405 with Allow. HEAD is answered as GET without a body.
//
// One thread runs every request, so no client may hold the loop, and memory stays
// bounded whatever clients send:
//   - a connection's TLS handshake and first request must arrive whole within
//     --request-timeout of its accept, and each next request on a kept-alive connection
//     within --request-timeout of the previous answer (evhttp's own timeout restarts at
//     every byte, so a client sending a byte a second would otherwise hold a connection);
//   - evhttp's read and write timeouts (the same duration) drop a client that stops
//     sending or stops reading;
//   - headers are limited to kMaxHeaderBytes and bodies to --max-request-bytes (evhttp
//     answers 413 and closes);
//   - at most --max-connections are open: at the cap the server stops accepting, and new
//     connections wait in the kernel's listen backlog until one closes (or their client
//     gives up). Waiting, not a refusal: the API server's call is merely slower, and
//     buffered request bytes stay below max-connections x max-request-bytes.
// The cap and the deadline are service/http_connections.hpp's (libevent 2.1 has neither),
// with its `wait` policy: closing connections over the cap at once, as the agent does,
// races with the TLS handshake, which libevent may run before the next turn.
//
// Every callback runs inside guarded(): a request whose handler throws gets a 500.
// Not thread-safe: everything runs on the loop that `base` drives.
#pragma once

#include <event2/event.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "metrics.hpp"
#include "options.hpp"
#include "service/http_connections.hpp"
#include "webhook.hpp"

namespace yuxi::config::injector {

class TlsContext;

inline constexpr std::size_t kMaxHeaderBytes = 16384;

using service::HttpError;

struct HttpLimits {
    std::chrono::milliseconds request_timeout = kDefaultRequestTimeout;
    std::size_t max_body_bytes = kDefaultMaxRequestBytes;
    std::size_t max_connections = kDefaultMaxConnections;
};

struct Handlers {
    std::function<HttpAnswer(std::string_view body)> mutate;  // empty: no /mutate here
    std::function<HttpAnswer()> readyz;
    std::function<std::string()> metrics;
};

class HttpServer {
  public:
    // `tls` null: plain HTTP. `base`, `tls` and `metrics` must outlive this object.
    HttpServer(event_base* base, const TlsContext* tls, Handlers handlers, HttpLimits limits,
               Metrics& metrics);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    // Listens on `address`; throws HttpError naming `flag`, the address and the reason.
    void start(const ListenAddress& address, std::string_view flag);
    // Accepts no new connection (shutdown); open ones are still served.
    void stop_accepting() noexcept;

    std::uint16_t port() const noexcept { return port_; }
    std::size_t connections() const noexcept { return connections_.open(); }

  private:
    struct HttpFree {
        void operator()(evhttp* h) const noexcept;
    };

    static bufferevent* on_new_connection(event_base* base, void* self) noexcept;
    static void on_request(evhttp_request* req, void* self) noexcept;

    bufferevent* new_connection(event_base* base);
    void handle(evhttp_request* req, bool& replied);

    event_base* base_;
    const TlsContext* tls_;
    Handlers handlers_;
    HttpLimits limits_;
    Metrics& metrics_;
    // Before http_: destroyed after it, which closes (and uncounts) the open connections.
    service::HttpConnections connections_;
    std::unique_ptr<evhttp, HttpFree> http_;
    evhttp_bound_socket* bound_ = nullptr;
    std::uint16_t port_ = 0;
};

}  // namespace yuxi::config::injector
