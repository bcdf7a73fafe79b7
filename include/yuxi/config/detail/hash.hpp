// The key hash and the entry checksum. Both sides of the segment must agree on them, so
// they are part of the layout: changing either needs a layout::kVersion bump. Layout 2
// hashes keys with key_hash; layout 1 with v1::key_hash (both layouts checksum entries
// with entry_checksum).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "yuxi/config/layout.hpp"

namespace yuxi::config::detail {

__extension__ typedef unsigned __int128 uint128;  // GCC and clang, on 64-bit targets

// Multiply-and-fold mixing, eight bytes at a time: a 20-byte key costs a few nanoseconds.
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
    const uint128 r = static_cast<uint128>(a) * b;
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline std::uint64_t load64(const unsigned char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline constexpr std::uint64_t kP0 = 0xa0761d6478bd642fULL;
inline constexpr std::uint64_t kP1 = 0xe7037ed1a0b428dbULL;
inline constexpr std::uint64_t kP2 = 0x8ebc6af09c88c6e3ULL;
inline constexpr std::uint64_t kP3 = 0x589965cc75374cc3ULL;

inline std::uint64_t hash_bytes(const void* data, std::size_t n, std::uint64_t seed) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t h = seed ^ mix(n ^ kP0, kP1);
    while (n >= 16) {
        h = mix(load64(p) ^ kP1, load64(p + 8) ^ h);
        p += 16;
        n -= 16;
    }
    if (n >= 8) {
        h = mix(load64(p) ^ kP2, h ^ kP0);
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        std::uint64_t tail = 0;
        std::memcpy(&tail, p, n);
        h = mix(tail ^ kP3, h ^ kP1);
    }
    return mix(h ^ kP2, kP3);
}

inline std::uint64_t load32(const unsigned char* p) noexcept {
    std::uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

// The key hash of layout 2. Short keys, the common case, cost no loop and no call: bytes
// 4 to 16 are read as two overlapping pairs of 4-byte words, longer keys 16 bytes at a
// time with a last, overlapping block; every byte of the key takes part.
__attribute__((always_inline)) inline std::uint64_t hash_key_bytes(const void* data, std::size_t n,
                                                                   std::uint64_t seed) noexcept {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    if (n <= 16) {
        if (n >= 4) {
            const std::size_t mid = (n >> 3) << 2;  // 0 for 4..7 bytes, 4 for 8..16
            a = (load32(p) << 32) | load32(p + mid);
            b = (load32(p + n - 4) << 32) | load32(p + n - 4 - mid);
        } else if (n > 0) {
            a = (std::uint64_t{p[0]} << 16) | (std::uint64_t{p[n >> 1]} << 8) | p[n - 1];
        }
    } else {
        std::size_t left = n;
        do {
            seed = mix(load64(p) ^ kP1, load64(p + 8) ^ seed);
            p += 16;
            left -= 16;
        } while (left > 16);
        a = load64(p + left - 16);
        b = load64(p + left - 8);
    }
    return mix(kP1 ^ n, mix(a ^ kP1, b ^ seed ^ kP0));
}

// Never 0: 0 marks an empty slot.
inline std::uint64_t key_hash(Namespace ns, std::string_view key) noexcept {
    const std::uint64_t h =
        hash_key_bytes(key.data(), key.size(), kP2 + static_cast<std::uint64_t>(ns));
    return h == 0 ? 1 : h;
}

// Whether n bytes at a and b are equal: for keys of up to 32 bytes, a few overlapping
// loads and no call.
__attribute__((always_inline)) inline bool same_bytes(const char* a, const char* b,
                                                      std::size_t n) noexcept {
    const auto* x = reinterpret_cast<const unsigned char*>(a);
    const auto* y = reinterpret_cast<const unsigned char*>(b);
    if (n >= 8) {
        if (n > 32) {
            return std::memcmp(a, b, n) == 0;
        }
        std::uint64_t diff = (load64(x) ^ load64(y)) | (load64(x + n - 8) ^ load64(y + n - 8));
        if (n > 16) {
            diff |= (load64(x + 8) ^ load64(y + 8)) | (load64(x + n - 16) ^ load64(y + n - 16));
        }
        return diff == 0;
    }
    if (n >= 4) {
        return ((load32(x) ^ load32(y)) | (load32(x + n - 4) ^ load32(y + n - 4))) == 0;
    }
    std::uint64_t diff = 0;
    for (std::size_t i = 0; i < n; ++i) {
        diff |= std::uint64_t{x[i]} ^ y[i];
    }
    return diff == 0;
}

namespace v1 {

// The key hash of layout 1. Never 0: 0 marks an empty slot.
inline std::uint64_t key_hash(Namespace ns, std::string_view key) noexcept {
    const std::uint64_t h =
        hash_bytes(key.data(), key.size(), kP2 + static_cast<std::uint64_t>(ns));
    return h == 0 ? 1 : h;
}

}  // namespace v1

inline std::uint64_t entry_checksum(std::string_view key, std::string_view category,
                                    std::string_view value) noexcept {
    std::uint64_t h = hash_bytes(key.data(), key.size(), kP0);
    h = hash_bytes(category.data(), category.size(), h);
    return hash_bytes(value.data(), value.size(), h);
}

}  // namespace yuxi::config::detail
