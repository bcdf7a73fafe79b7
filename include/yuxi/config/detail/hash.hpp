// The key hash and the entry checksum. Both sides of the segment must agree on them, so
// they are part of the layout: changing either needs a layout::kVersion bump.
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

// Never 0: 0 marks an empty slot.
inline std::uint64_t key_hash(Namespace ns, std::string_view key) noexcept {
    const std::uint64_t h =
        hash_bytes(key.data(), key.size(), kP2 + static_cast<std::uint64_t>(ns));
    return h == 0 ? 1 : h;
}

inline std::uint64_t entry_checksum(std::string_view key, std::string_view category,
                                    std::string_view value) noexcept {
    std::uint64_t h = hash_bytes(key.data(), key.size(), kP0);
    h = hash_bytes(category.data(), category.size(), h);
    return hash_bytes(value.data(), value.size(), h);
}

}  // namespace yuxi::config::detail
