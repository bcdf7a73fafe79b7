// HMAC-SHA256 envelopes with OpenSSL's EVP_MAC (signing.hpp).
#include "core/signing.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <mutex>
#include <new>
#include <stdexcept>

#include "core/text.hpp"

namespace yuxi::config {
namespace {

constexpr std::string_view kPrefix = "y1.";
constexpr std::size_t kIdChars = 8;
constexpr std::size_t kMacBytes = 32;
constexpr std::size_t kMacChars = 43;  // base64url of 32 bytes, no padding

using MacBytes = std::array<unsigned char, kMacBytes>;

struct MacFree {
    void operator()(EVP_MAC* m) const noexcept { EVP_MAC_free(m); }
};
struct MacCtxFree {
    void operator()(EVP_MAC_CTX* c) const noexcept { EVP_MAC_CTX_free(c); }
};
using MacCtxPtr = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

// HMAC-SHA256 keyed with `key`, ready to be duplicated for each message.
MacCtxPtr keyed_hmac(std::string_view key) {
    static const std::unique_ptr<EVP_MAC, MacFree> hmac(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!hmac) {
        throw std::runtime_error("OpenSSL: no HMAC implementation");
    }
    MacCtxPtr ctx(EVP_MAC_CTX_new(hmac.get()));
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (!ctx || EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(key.data()),
                             key.size(), params) != 1) {
        throw std::runtime_error("OpenSSL: cannot initialize HMAC-SHA256");
    }
    return ctx;
}

// Feeds `parts` to an initialized context and returns the MAC.
MacBytes finish(EVP_MAC_CTX* ctx, std::initializer_list<std::string_view> parts) {
    for (const std::string_view p : parts) {
        if (EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(p.data()), p.size()) != 1) {
            throw std::runtime_error("OpenSSL: HMAC update failed");
        }
    }
    MacBytes out{};
    std::size_t n = 0;
    if (EVP_MAC_final(ctx, out.data(), &n, out.size()) != 1 || n != out.size()) {
        throw std::runtime_error("OpenSSL: HMAC final failed");
    }
    return out;
}

// The MAC of `parts` (concatenated) under the keyed context `base`, on a duplicate of it.
MacBytes mac_of(EVP_MAC_CTX* base, std::initializer_list<std::string_view> parts) {
    const MacCtxPtr ctx(EVP_MAC_CTX_dup(base));
    if (!ctx) {
        throw std::bad_alloc();
    }
    return finish(ctx.get(), parts);
}

std::string base64url(const unsigned char* bytes, std::size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes, static_cast<int>(n));
    out.resize(static_cast<std::size_t>(len));
    while (!out.empty() && out.back() == '=') {
        out.pop_back();
    }
    std::replace(out.begin(), out.end(), '+', '-');
    std::replace(out.begin(), out.end(), '/', '_');
    return out;
}

// Standard or URL-safe base64, padding optional; nothing if it is not base64.
std::optional<std::string> decode_base64(std::string_view text) {
    std::string s(text);
    std::replace(s.begin(), s.end(), '-', '+');
    std::replace(s.begin(), s.end(), '_', '/');
    std::size_t padding = 0;
    while (!s.empty() && s.back() == '=') {
        s.pop_back();
    }
    while (s.size() % 4 != 0) {
        s += '=';
        ++padding;
    }
    if (s.empty() || padding == 3) {
        return std::nullopt;
    }
    std::string out(s.size() / 4 * 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(s.data()),
                                  static_cast<int>(s.size()));
    if (n < 0 || static_cast<std::size_t>(n) < padding) {
        return std::nullopt;
    }
    out.resize(static_cast<std::size_t>(n) - padding);
    return out;
}

std::string key_id(std::string_view secret) {
    const MacCtxPtr ctx = keyed_hmac(secret);
    const MacBytes m = mac_of(ctx.get(), {"yuxi-config key id"});
    char hex[kIdChars + 1];
    std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", m[0], m[1], m[2], m[3]);
    return hex;
}

}  // namespace

// A keyed context, and a working copy re-initialized for each message: EVP_MAC_init with
// no key restarts HMAC with the key already set, half the cost of duplicating the keyed
// context per message (no allocation). The mutex makes a KeyRing safe to share between
// threads (the admin library's); uncontended, as in the agent's loop, it costs ~20 ns.
struct KeyRing::Mac {
    MacCtxPtr ctx;
    std::mutex mutex;
    MacCtxPtr work;  // under `mutex`; made on first use

    MacBytes of(std::initializer_list<std::string_view> parts) {
        const std::lock_guard lock(mutex);
        if (!work) {
            work.reset(EVP_MAC_CTX_dup(ctx.get()));
            if (!work) {
                throw std::bad_alloc();
            }
        } else if (EVP_MAC_init(work.get(), nullptr, 0, nullptr) != 1) {
            return mac_of(ctx.get(), parts);  // an OpenSSL that cannot restart: duplicate
        }
        return finish(work.get(), parts);
    }
};

Decoded<SigningKey> SigningKey::from_base64(std::string_view text, std::string_view origin) {
    const std::string_view trimmed = trim(text);
    if (trimmed.empty()) {
        return refuse(std::string(origin) + " is empty: give a base64 key of at least " +
                      std::to_string(kMinKeyBytes) + " bytes (yuxi-configctl keygen makes one)");
    }
    auto secret = trimmed.size() <= 2 * kMaxKeyBytes ? decode_base64(trimmed) : std::nullopt;
    if (!secret) {
        return refuse(std::string(origin) + " is not base64 (yuxi-configctl keygen makes a key)");
    }
    if (secret->size() < kMinKeyBytes || secret->size() > kMaxKeyBytes) {
        return refuse(std::string(origin) + " holds " + std::to_string(secret->size()) +
                      " bytes; a key has " + std::to_string(kMinKeyBytes) + " to " +
                      std::to_string(kMaxKeyBytes));
    }
    SigningKey k;
    k.secret_ = std::move(*secret);
    k.id_ = key_id(k.secret_);
    return k;
}

std::string SigningKey::generate_base64() {
    std::array<unsigned char, kMinKeyBytes> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        throw std::runtime_error("OpenSSL: RAND_bytes failed");
    }
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                    static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(len));
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return out;
}

KeyRing::KeyRing(SigningKey current, std::optional<SigningKey> previous,
                 std::vector<SigningKey> also_accepted)
    : current_(std::move(current)), previous_(std::move(previous)) {
    const auto accept = [this](const SigningKey& k) {
        for (const Accepted& a : accepted_) {
            if (a.key.id() == k.id()) {
                return;
            }
        }
        auto mac = std::make_unique<Mac>();
        mac->ctx = keyed_hmac(k.secret());
        accepted_.push_back({k, std::move(mac)});
    };
    accept(current_);
    if (previous_) {
        accept(*previous_);
    }
    for (const SigningKey& k : also_accepted) {
        accept(k);
    }
}

std::vector<SigningKey> KeyRing::accepted() const {
    std::vector<SigningKey> out;
    for (const Accepted& a : accepted_) {
        out.push_back(a.key);
    }
    return out;
}

KeyRing::~KeyRing() = default;

std::string KeyRing::sign(std::string_view document) const {
    std::string head = std::string(kPrefix) + current_.id() + ".";
    const MacBytes m = accepted_.front().mac->of({head, document});
    std::string out;
    out.reserve(head.size() + kMacChars + 1 + document.size());
    out += head;
    out += base64url(m.data(), m.size());
    out += '.';
    out += document;
    return out;
}

Decoded<std::string_view> KeyRing::verify(std::string_view envelope) const {
    const std::size_t head_size = kPrefix.size() + kIdChars + 1;
    if (!envelope.starts_with(kPrefix) || envelope.size() < head_size + kMacChars + 1 ||
        envelope[head_size - 1] != '.' || envelope[head_size + kMacChars] != '.') {
        return refuse("not signed");
    }
    const std::string_view head = envelope.substr(0, head_size);
    const std::string_view id = envelope.substr(kPrefix.size(), kIdChars);
    const std::string_view mac = envelope.substr(head_size, kMacChars);
    const std::string_view document = envelope.substr(head_size + kMacChars + 1);
    Mac* key = nullptr;
    for (const Accepted& a : accepted_) {
        if (a.key.id() == id) {
            key = a.mac.get();
        }
    }
    if (key == nullptr) {
        return refuse("unknown key id " + printable(id, kIdChars));
    }
    const MacBytes want = key->of({head, document});
    const std::string want_text = base64url(want.data(), want.size());
    if (CRYPTO_memcmp(want_text.data(), mac.data(), kMacChars) != 0) {
        return refuse("bad signature");
    }
    return document;
}

}  // namespace yuxi::config
