// The HTTP surface: evhttp on the agent's loop, with the limits that keep clients from
// holding it.
#include "agent/ops/http_server.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "agent/ops/rejections.hpp"

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

void reply(evhttp_request* req, int code, std::string_view body, const char* type = kTextType) {
    evkeyvalq* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Type", type);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evbuffer_add(evhttp_request_get_output_buffer(req), body.data(), body.size());
    evhttp_send_reply(req, code, service::reason_phrase(code), nullptr);
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

void HttpServer::HttpFree::operator()(evhttp* h) const noexcept {
    evhttp_free(h);
}

HttpServer::HttpServer(event_base* base, const Metrics& metrics, StatusFn status)
    : base_(base),
      metrics_(metrics),
      status_(std::move(status)),
      connections_(
          {kRequestDeadline, kMaxConnections, service::HttpConnections::AtCap::close_new,
           kMaxOverflow},
          [](const char*, const std::function<void()>& body) { guarded("http", body); },
          [this] {
              const std::uint64_t n = connections_.cap_events();
              if (n == 1 || n % 1000 == 0) {
                  spdlog::warn("HTTP: {} connections open, the limit; closing new ones ({} so far)",
                               kMaxConnections, n);
              }
          }) {}

HttpServer::~HttpServer() {
    bound_ = nullptr;  // evhttp_free frees it
    http_.reset();     // closes every attached connection, which uncounts it
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
    port_ = service::bound_port(bound_);
    connections_.listen_on(bound_);
    spdlog::info("HTTP: listening on {}:{} (/healthz, /readyz, /metrics)", address.host, port_);
}

void HttpServer::create() {
    service::EvhttpSetup setup;
    setup.max_header_bytes = kMaxHeaderBytes;
    setup.max_body_bytes = kMaxBodyBytes;
    setup.io_timeout = kIoTimeout;
    setup.on_connection = &HttpServer::on_new_connection;
    setup.on_request = &HttpServer::on_request;
    setup.arg = this;
    http_.reset(service::make_evhttp(base_, setup));
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
    guarded("http", [&] {
        // On failure evhttp makes a bufferevent of its own: that one connection goes
        // uncounted.
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev != nullptr) {
            bev = static_cast<HttpServer*>(self)->connections_.track(base, bev);
        }
    });
    return bev;
}

void HttpServer::on_request(evhttp_request* req, void* self) {
    auto& me = *static_cast<HttpServer*>(self);
    bool answered = false;
    guarded("http", [&] {
        me.connections_.rearm(req);
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

}  // namespace yuxi::config::agent
