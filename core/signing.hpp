// Signed documents: an HMAC-SHA256 (OpenSSL) over the exact bytes of every document the
// agents write to Redis, so that only holders of the fleet's key can change what pods
// read. Redis is a transport; PostgreSQL and this key decide (docs/security.md).
//
// The envelope is text, so it fits every Redis value the documents use (a pub/sub
// message, a stream field, a string, a hash field):
//
//   y1.<key id>.<MAC>.<document>
//
// `key id` is 8 hex digits derived from the key (never the key itself): the receiver
// picks the key with it, so a key rotates with no flag day (sign with the current key,
// accept the current and the previous). `MAC` is HMAC-SHA256(key, "y1.<key id>." +
// document) in base64url without padding (43 characters). A receiver verifies the
// envelope before it parses anything of the document.
//
// Keys are at least 32 random bytes, given in base64 (`yuxi-configctl keygen`). A key's
// bytes never appear in a message, a log or a metric: errors name where the key came
// from, and only its id is ever shown.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decoded.hpp"

namespace yuxi::config {

inline constexpr std::size_t kMinKeyBytes = 32;
// What an envelope adds to a document: "y1." + 8-digit id + "." + 43-character MAC + ".".
inline constexpr std::size_t kMaxEnvelopeBytes = 3 + 8 + 1 + 43 + 1;
inline constexpr std::size_t kMaxKeyBytes = 1024;

class SigningKey {
  public:
    // A key from its base64 text (standard or URL-safe alphabet, padding optional,
    // surrounding white space ignored), or why not: `origin` names where it came from
    // ("YUXI_CONFIG_SIGNING_KEY", a file name) in the reason, never the text.
    static Decoded<SigningKey> from_base64(std::string_view text, std::string_view origin);
    // 32 new random bytes (OpenSSL's RAND_bytes), in base64: what keygen prints.
    static std::string generate_base64();

    const std::string& id() const noexcept { return id_; }
    const std::string& secret() const noexcept { return secret_; }

  private:
    std::string id_;
    std::string secret_;
};

// The keys an agent signs and verifies with: the current one, the previous one while a
// rotation is under way, and any others it still accepts (keys just retired, so that
// agents that pick up a change a second apart never refuse each other). Immutable; a
// rotation makes a new KeyRing.
class KeyRing {
  public:
    explicit KeyRing(SigningKey current, std::optional<SigningKey> previous = std::nullopt,
                     std::vector<SigningKey> also_accepted = {});
    ~KeyRing();
    KeyRing(const KeyRing&) = delete;
    KeyRing& operator=(const KeyRing&) = delete;

    // `document` in an envelope signed with the current key.
    std::string sign(std::string_view document) const;

    // The document inside `envelope` (a view into it) if its MAC verifies under the key
    // its id names; else why not: "not signed", "unknown key id", "bad signature".
    Decoded<std::string_view> verify(std::string_view envelope) const;

    const SigningKey& current() const noexcept { return current_; }
    const std::optional<SigningKey>& previous() const noexcept { return previous_; }
    // Every key it accepts, the current one first.
    std::vector<SigningKey> accepted() const;

  private:
    struct Mac;  // an initialized HMAC per key (OpenSSL EVP_MAC), duplicated per message
    struct Accepted {
        SigningKey key;
        std::unique_ptr<Mac> mac;
    };

    SigningKey current_;
    std::optional<SigningKey> previous_;
    std::vector<Accepted> accepted_;  // the current key first
};

}  // namespace yuxi::config
