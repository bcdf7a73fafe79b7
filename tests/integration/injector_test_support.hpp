// What the injector's HTTPS tests and its benchmark share: certificates made by the
// `openssl` command (a CA, and a server certificate for 127.0.0.1 signed by it), a TLS
// client that verifies the server against a CA (OpenSSL, blocking, keep-alive), commands
// run to completion (openssl, curl), and the injector process on a free port.
#pragma once

#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "support/hermetic.hpp"
#include "support/loopback_http.hpp"
#include "support/process.hpp"

namespace yuxi::config::test {

// A command's exit status and output; code -1 if it could not start or ran out of time.
struct CommandResult {
    int code = -1;
    std::string out;
    std::string err;
};

inline CommandResult run_command(const std::vector<std::string>& argv, const fs::path& dir,
                                 std::chrono::milliseconds timeout = 30s) {
    const fs::path out = dir / "run.out";
    const fs::path err = dir / "run.err";
    FileActions actions;
    actions.write_to(1, out, LogMode::truncate).write_to(2, err, LogMode::truncate);
    const pid_t pid = spawn_process(argv, child_environment({}), actions);
    CommandResult r;
    if (pid < 0) {
        return r;
    }
    const Exit e = wait_exit(pid, timeout);
    if (!e.exited) {
        kill_and_reap(pid);
    } else {
        r.code = e.code;
    }
    r.out = read_text(out);
    r.err = read_text(err);
    return r;
}

inline bool have_program(const char* name) {
    const char* path = std::getenv("PATH");
    std::string_view p = path != nullptr ? path : "/usr/bin:/bin";
    while (!p.empty()) {
        const auto colon = p.find(':');
        if (::access((fs::path(p.substr(0, colon)) / name).c_str(), X_OK) == 0) {
            return true;
        }
        p = colon == std::string_view::npos ? std::string_view() : p.substr(colon + 1);
    }
    return false;
}

// A CA (DIR/NAME.crt, DIR/NAME.key): an EC P-256 key and a self-signed certificate.
inline bool make_ca(const fs::path& dir, const std::string& name) {
    const std::string base = (dir / name).string();
    return run_command({"openssl",
                        "req",
                        "-x509",
                        "-newkey",
                        "ec",
                        "-pkeyopt",
                        "ec_paramgen_curve:P-256",
                        "-nodes",
                        "-keyout",
                        base + ".key",
                        "-out",
                        base + ".crt",
                        "-days",
                        "2",
                        "-subj",
                        "/CN=" + name,
                        "-addext",
                        "basicConstraints=critical,CA:TRUE",
                        "-addext",
                        "keyUsage=critical,keyCertSign,cRLSign"},
                       dir)
               .code == 0;
}

// A server certificate for 127.0.0.1 and localhost signed by CA `ca`: DIR/NAME.crt, .key.
inline bool make_server_cert(const fs::path& dir, const std::string& ca, const std::string& name,
                             int days = 1) {
    const std::string base = (dir / name).string();
    const fs::path ext = dir / (name + ".ext");
    std::ofstream(ext) << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                          "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n";
    const std::string ca_base = (dir / ca).string();
    return run_command(
               {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + name},
               dir)
                   .code == 0 &&
           run_command(
               {"openssl", "x509", "-req", "-in", base + ".csr", "-CA", ca_base + ".crt", "-CAkey",
                ca_base + ".key", "-set_serial", std::to_string(100000 + ::getpid() % 1000),
                "-days", std::to_string(days), "-out", base + ".crt", "-extfile", ext.string()},
               dir)
                   .code == 0;
}

struct HttpResponse {
    int status = 0;  // 0: no answer (closed, reset, timed out)
    std::string headers;
    std::string body;
};

// A blocking TLS connection to 127.0.0.1:port that verifies the server against `ca_file`
// (chain and IP address), for several requests in turn (keep-alive).
class TlsClient {
  public:
    TlsClient(std::uint16_t port, const fs::path& ca_file, std::chrono::milliseconds timeout = 5s) {
        ctx_ = SSL_CTX_new(TLS_client_method());
        if (ctx_ == nullptr || SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1) {
            return;
        }
        SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
        fd_ = connect_loopback(port, timeout);
        if (fd_ < 0) {
            return;
        }
        ssl_ = SSL_new(ctx_);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
        SSL_set_fd(ssl_, fd_);
        connected_ = SSL_connect(ssl_) == 1;
        ERR_clear_error();
    }
    ~TlsClient() {
        if (ssl_ != nullptr) {
            SSL_free(ssl_);
        }
        if (fd_ >= 0) {
            ::close(fd_);
        }
        SSL_CTX_free(ctx_);
    }
    TlsClient(const TlsClient&) = delete;
    TlsClient& operator=(const TlsClient&) = delete;

    // The handshake passed, and the server's certificate verified.
    bool connected() const noexcept { return connected_; }

    bool send(std::string_view bytes) {
        while (connected_ && !bytes.empty()) {
            const int n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
            if (n <= 0) {
                ERR_clear_error();
                return false;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return connected_;
    }

    // One response (Content-Length framed); status 0 if the server closed or timed out.
    HttpResponse receive() {
        HttpResponse r;
        std::size_t end = std::string::npos;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
            if (!fill()) {
                return r;
            }
        }
        r.headers = buf_.substr(0, end);
        if (!r.headers.starts_with("HTTP/1.1 ")) {
            return r;
        }
        std::size_t length = 0;
        const auto cl = r.headers.find("Content-Length: ");
        if (cl != std::string::npos) {
            length = std::strtoul(r.headers.c_str() + cl + 16, nullptr, 10);
        }
        while (buf_.size() < end + 4 + length) {
            if (!fill()) {
                return r;
            }
        }
        r.status = std::atoi(r.headers.c_str() + 9);
        r.body = buf_.substr(end + 4, length);
        buf_.erase(0, end + 4 + length);
        return r;
    }

    HttpResponse request(std::string_view method, std::string_view path, std::string_view body = {},
                         std::string_view content_type = "application/json") {
        std::string req =
            std::string(method) + " " + std::string(path) +
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + std::string(content_type) +
            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
        req.append(body);
        if (!send(req)) {
            return {};
        }
        return receive();
    }

    // Whether the server closed the connection (or reset it) within `timeout`.
    bool closed_by_server(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            if (!fill()) {
                return errno != EAGAIN && errno != EWOULDBLOCK;
            }
        }
        return false;
    }

  private:
    bool fill() {
        if (!connected_) {
            return false;
        }
        char chunk[16384];
        errno = 0;
        const int n = SSL_read(ssl_, chunk, sizeof chunk);
        if (n <= 0) {
            ERR_clear_error();
            return false;
        }
        buf_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    int fd_ = -1;
    bool connected_ = false;
    std::string buf_;
};

// yuxi-config-injector on a free port, its output in DIR/injector.log.
class InjectorProcess {
  public:
    ~InjectorProcess() { stop(); }

    // Starts it with `args` (plus --listen on a free port) and waits until /readyz answers
    // 200 over TLS verified by `ca`; false if it never does. `prefix` runs it through
    // another program (e.g. taskset -c 0).
    bool start(const std::string& binary, std::vector<std::string> args, const fs::path& dir,
               const fs::path& ca, const std::vector<std::string>& prefix = {}) {
        log_ = dir / "injector.log";
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = free_port();
            std::vector<std::string> argv = prefix;
            argv.insert(argv.end(), {binary, "--listen", "127.0.0.1:" + std::to_string(port_)});
            argv.insert(argv.end(), args.begin(), args.end());
            pid_ = spawn_process(argv, child_environment({"YUXI_INJECTOR_", "LOG_"}), log_,
                                 LogMode::append);
            if (pid_ < 0) {
                return false;
            }
            if (eventually(
                    [&] {
                        TlsClient c(port_, ca, 1s);
                        return c.connected() && c.request("GET", "/readyz").status == 200;
                    },
                    10s)) {
                return true;
            }
            stop();  // the port was taken meanwhile, or it failed
        }
        return false;
    }

    // SIGTERM, then its exit status (-1 if it did not exit within `timeout`).
    int terminate(std::chrono::milliseconds timeout = 10s) {
        if (pid_ <= 0) {
            return -1;
        }
        ::kill(pid_, SIGTERM);
        const Exit e = wait_exit(pid_, timeout);
        if (!e.exited) {
            kill_and_reap(pid_);
        }
        pid_ = -1;
        return e.exited ? e.code : -1;
    }

    void stop() {
        if (pid_ > 0) {
            kill_and_reap(pid_);
            pid_ = -1;
        }
    }

    // Still running (it is reaped if it has exited).
    bool running() {
        if (pid_ <= 0) {
            return false;
        }
        if (::waitpid(pid_, nullptr, WNOHANG) == 0) {
            return true;
        }
        pid_ = -1;
        return false;
    }
    pid_t pid() const noexcept { return pid_; }
    std::uint16_t port() const noexcept { return port_; }
    std::string log() const { return read_text(log_); }

  private:
    pid_t pid_ = -1;
    std::uint16_t port_ = 0;
    fs::path log_;
};

}  // namespace yuxi::config::test
