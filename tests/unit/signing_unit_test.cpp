// Envelopes of core/signing.hpp, checked against OpenSSL's one-shot HMAC() as a reference:
// every signature (the first with a key, and each one after, on the re-initialized
// context), verification with the current and the previous key, and what is refused.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>
#include <thread>
#include <vector>

#include "core/signing.hpp"

namespace yuxi::config {
namespace {

// The envelope "y1.<id>.<MAC>.<document>": HMAC-SHA256 over "y1.<id>." + document.
std::string reference_envelope(const SigningKey& key, std::string_view document) {
    const std::string head = "y1." + key.id() + ".";
    const std::string signed_bytes = head + std::string(document);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key.secret().data(), static_cast<int>(key.secret().size()),
         reinterpret_cast<const unsigned char*>(signed_bytes.data()), signed_bytes.size(), mac, &n);
    std::string b64(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), mac, static_cast<int>(n));
    b64.resize(static_cast<std::size_t>(len));
    for (char& c : b64) {
        c = c == '+' ? '-' : c == '/' ? '_' : c;  // base64url
    }
    while (!b64.empty() && b64.back() == '=') {
        b64.pop_back();
    }
    return head + b64 + "." + std::string(document);
}

SigningKey key_of(const char* base64) {
    auto k = SigningKey::from_base64(base64, "test");
    EXPECT_TRUE(k.ok());
    return *k;
}

const char* const kCurrent = "Y3VycmVudC1rZXktb2YtdGhlLXNpZ25pbmctdW5pdC10ZXN0";
const char* const kPrevious = "cHJldmlvdXMta2V5LW9mLXRoZS1zaWduaW5nLXVuaXQtdGVzdA";

TEST(SigningTest, EverySignatureMatchesTheReferenceHmac) {
    const SigningKey current = key_of(kCurrent);
    const KeyRing ring(current);
    // Different lengths in turn: the context restarted for each message must not carry
    // anything over from the one before.
    for (const std::string& doc : {std::string("{}"), std::string(1000, 'a'), std::string(""),
                                   std::string(65, 'b'), std::string("{\"v\":1}")}) {
        EXPECT_EQ(ring.sign(doc), reference_envelope(current, doc)) << doc.size() << " bytes";
    }
}

TEST(SigningTest, VerifiesTheCurrentAndThePreviousKeyAndRefusesTheRest) {
    const SigningKey current = key_of(kCurrent);
    const SigningKey previous = key_of(kPrevious);
    const KeyRing ring(current, previous);
    const KeyRing old_ring(previous);
    const KeyRing stranger(key_of(SigningKey::generate_base64().c_str()));
    for (int round = 0; round < 3; ++round) {  // the second round runs on restarted contexts
        const std::string doc = "{\"revision\":" + std::to_string(round) + "}";
        auto mine = ring.verify(ring.sign(doc));
        ASSERT_TRUE(mine.ok()) << mine.reason();
        EXPECT_EQ(*mine, doc);
        auto old = ring.verify(old_ring.sign(doc));
        ASSERT_TRUE(old.ok()) << old.reason();
        EXPECT_EQ(*old, doc);
        auto foreign = ring.verify(stranger.sign(doc));
        ASSERT_FALSE(foreign.ok());
        EXPECT_NE(foreign.reason().find("unknown key id"), std::string::npos);
        std::string tampered = ring.sign(doc);
        tampered.back() = tampered.back() == '}' ? ']' : '}';
        auto bad = ring.verify(tampered);
        ASSERT_FALSE(bad.ok());
        EXPECT_EQ(bad.reason(), "bad signature");
        auto bare = ring.verify(doc);
        ASSERT_FALSE(bare.ok());
        EXPECT_EQ(bare.reason(), "not signed");
    }
}

// The admin library may share one ring between threads: each signature stays right.
TEST(SigningTest, ThreadsSharingARingGetTheirOwnSignatures) {
    const SigningKey current = key_of(kCurrent);
    const KeyRing ring(current);
    std::vector<std::thread> threads;
    std::vector<int> wrong(4, 0);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 500; ++i) {
                const std::string doc(static_cast<std::size_t>(t * 100 + i % 7), 'x');
                const std::string env = ring.sign(doc);
                wrong[static_cast<std::size_t>(t)] +=
                    env != reference_envelope(current, doc) || !ring.verify(env) ? 1 : 0;
            }
        });
    }
    for (std::thread& th : threads) {
        th.join();
    }
    EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace yuxi::config
