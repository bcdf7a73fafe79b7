// The TLS context: a certificate and key from files, rebuilt when the files change.
#include "tls_context.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <iterator>
#include <optional>

namespace yuxi::config::injector {
namespace {

// A certificate chain and a key are a few KiB; anything much larger is not one.
constexpr std::size_t kMaxFileBytes = 1 << 20;

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
struct X509Free {
    void operator()(X509* x) const noexcept { X509_free(x); }
};
struct KeyFree {
    void operator()(EVP_PKEY* k) const noexcept { EVP_PKEY_free(k); }
};

// OpenSSL's first queued error, in words; the queue is emptied.
std::string openssl_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) {
        return "unknown error";
    }
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// The file's bytes, or nothing (with `why`).
std::optional<std::string> read_file(const std::string& path, std::string& why) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = "cannot read " + path;
        return std::nullopt;
    }
    std::string bytes;
    char buf[4096];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        bytes.append(buf, static_cast<std::size_t>(in.gcount()));
        if (bytes.size() > kMaxFileBytes) {
            why = path + " is larger than 1 MiB: not a PEM certificate or key";
            return std::nullopt;
        }
    }
    return bytes;
}

// Wipes a buffer that held a private key.
struct Wiped {
    std::string& s;
    ~Wiped() { OPENSSL_cleanse(s.data(), s.size()); }
};

std::int64_t not_after_of(const X509* cert) {
    std::tm tm{};
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) {
        return 0;
    }
    return static_cast<std::int64_t>(::timegm(&tm));
}

BIO* memory_bio(const std::string& bytes) {
    return BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size()));
}

}  // namespace

TlsContext::TlsContext(std::string cert_path, std::string key_path)
    : cert_path_(std::move(cert_path)), key_path_(std::move(key_path)) {}

TlsContext::~TlsContext() = default;

void TlsContext::load() {
    if (load_files() == Reload::failed) {
        throw TlsError(error_);
    }
}

TlsContext::Reload TlsContext::reload() noexcept {
    try {
        return load_files();
    } catch (const std::exception& e) {
        error_ = e.what();
        return Reload::failed;
    }
}

SSL* TlsContext::new_ssl() const noexcept {
    return ctx_ ? SSL_new(ctx_.get()) : nullptr;
}

TlsContext::Reload TlsContext::load_files() {
    std::string why;
    auto cert_pem = read_file(cert_path_, why);
    auto key_pem = cert_pem ? read_file(key_path_, why) : std::nullopt;
    if (!key_pem) {
        error_ = why;
        return Reload::failed;
    }
    Wiped wipe{*key_pem};
    Digest digest{};
    unsigned int len = 0;
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    const bool hashed = md != nullptr && EVP_DigestInit_ex(md, EVP_sha256(), nullptr) == 1 &&
                        EVP_DigestUpdate(md, cert_pem->data(), cert_pem->size()) == 1 &&
                        EVP_DigestUpdate(md, key_pem->data(), key_pem->size()) == 1 &&
                        EVP_DigestFinal_ex(md, digest.data(), &len) == 1;
    EVP_MD_CTX_free(md);
    if (hashed && ((ctx_ && digest == digest_) || (!error_.empty() && digest == failed_))) {
        return Reload::unchanged;  // the pair in use, or the same bytes that failed last time
    }
    failed_ = digest;

    std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) {
        error_ = "OpenSSL: cannot create a TLS context: " + openssl_error();
        return Reload::failed;
    }
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                       SSL_OP_NO_COMPRESSION);
    // Idle kept-alive connections give their buffers back.
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);

    std::unique_ptr<BIO, BioFree> cert_bio(memory_bio(*cert_pem));
    std::unique_ptr<X509, X509Free> leaf(
        cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!leaf || SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1) {
        error_ = cert_path_ + ": no PEM certificate: " + openssl_error();
        return Reload::failed;
    }
    // The rest of the file is the chain, up to (not including) the root.
    while (X509* ca = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx.get(), ca) != 1) {
            X509_free(ca);
            error_ = cert_path_ + ": a chain certificate does not load: " + openssl_error();
            return Reload::failed;
        }
    }
    ERR_clear_error();  // the end of the file reads as "no start line"

    std::unique_ptr<BIO, BioFree> key_bio(memory_bio(*key_pem));
    std::unique_ptr<EVP_PKEY, KeyFree> key(
        key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr);
    if (!key) {
        error_ = key_path_ + ": no PEM private key: " + openssl_error();
        return Reload::failed;
    }
    if (X509_check_private_key(leaf.get(), key.get()) != 1) {
        ERR_clear_error();
        error_ = key_path_ + ": the key does not match the certificate in " + cert_path_;
        return Reload::failed;
    }
    if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
        error_ = key_path_ + ": OpenSSL does not take the key: " + openssl_error();
        return Reload::failed;
    }
    ctx_ = std::move(ctx);
    digest_ = digest;
    not_after_ = not_after_of(leaf.get());
    error_.clear();
    return Reload::reloaded;
}

}  // namespace yuxi::config::injector
