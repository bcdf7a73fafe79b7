// The server's TLS context, from a certificate and key file, and its reload when they change.
//
// cert-manager (or a person) replaces the files while the injector runs: a Secret mounted
// as a volume changes by an atomic swap of a symbolic link, so the two files change
// together. reload() reads both files and, when their bytes differ from the pair in use
// and form a valid pair (the key matches the certificate), builds a new SSL_CTX and makes
// it the one new connections take. A connection keeps the context it started with (each
// SSL holds a reference to its SSL_CTX), so nothing in flight is dropped. A pair that does
// not load (a half-written file, a key that does not match) leaves the old one in use;
// the next reload tries again.
//
// Settings: TLS 1.2 and 1.3 only, no renegotiation, no compression, HTTP/1.1 (no ALPN).
// The key is never logged; its bytes are wiped after use, and only a digest of the pair
// is kept to notice a change.
//
// Not thread-safe: the loop's thread calls everything.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace yuxi::config::injector {

// The pair cannot be used; the message names the file and OpenSSL's reason.
class TlsError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class TlsContext {
  public:
    TlsContext(std::string cert_path, std::string key_path);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    // Loads the pair; throws TlsError. For start-up: the injector does not serve without.
    void load();

    enum class Reload {
        unchanged,  // the files hold the pair in use
        reloaded,   // a new pair is in use for new connections
        failed,     // the files changed but do not load: the old pair stays (error()); the
                    // same bytes are not tried again
    };
    // Reads the files again. Never throws.
    Reload reload() noexcept;

    // A new server-side SSL on the current context; null if OpenSSL cannot make one.
    SSL* new_ssl() const noexcept;

    bool loaded() const noexcept { return ctx_ != nullptr; }
    // The certificate's notAfter, in seconds since the epoch.
    std::int64_t not_after() const noexcept { return not_after_; }
    // Why the last load or reload failed; empty after a success.
    const std::string& error() const noexcept { return error_; }

  private:
    struct CtxFree {
        void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
    };
    using Digest = std::array<unsigned char, 32>;

    // Reads both files; builds the context if their digest differs from `digest_`.
    Reload load_files();

    std::string cert_path_;
    std::string key_path_;
    std::unique_ptr<SSL_CTX, CtxFree> ctx_;
    Digest digest_{};  // of the pair in use
    Digest failed_{};  // of the last pair that did not load
    std::int64_t not_after_ = 0;
    std::string error_;
};

}  // namespace yuxi::config::injector
