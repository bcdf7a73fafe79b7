// Minimal JSON scalar decoding for the client's convenience calls (get_string, get_or),
// so that the client header needs no JSON library. Full JSON access is in json.hpp.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace yuxi::config::detail {

inline std::string_view trim_json(std::string_view s) noexcept {
    const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!s.empty() && space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

inline void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

inline std::optional<std::uint32_t> hex4(std::string_view s, std::size_t at) noexcept {
    if (at + 4 > s.size()) {
        return std::nullopt;
    }
    std::uint32_t v = 0;
    const auto r = std::from_chars(s.data() + at, s.data() + at + 4, v, 16);
    if (r.ec != std::errc() || r.ptr != s.data() + at + 4) {
        return std::nullopt;
    }
    return v;
}

// Decodes a JSON string literal (with its quotes); nothing if `s` is not one.
inline std::optional<std::string> json_unquote(std::string_view s) {
    s = trim_json(s);
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') {
        return std::nullopt;
    }
    std::string out;
    out.reserve(s.size() - 2);
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
        const char c = s[i];
        if (c != '\\') {
            out += c;
            continue;
        }
        if (++i >= s.size() - 1) {
            return std::nullopt;
        }
        switch (s[i]) {
            case '"':
                out += '"';
                break;
            case '\\':
                out += '\\';
                break;
            case '/':
                out += '/';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'n':
                out += '\n';
                break;
            case 'r':
                out += '\r';
                break;
            case 't':
                out += '\t';
                break;
            case 'u': {
                auto cp = hex4(s, i + 1);
                if (!cp) {
                    return std::nullopt;
                }
                i += 4;
                if (*cp >= 0xD800 && *cp < 0xDC00 && i + 6 < s.size() && s[i + 1] == '\\' &&
                    s[i + 2] == 'u') {
                    const auto lo = hex4(s, i + 3);
                    if (lo && *lo >= 0xDC00 && *lo < 0xE000) {
                        *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*lo - 0xDC00);
                        i += 6;
                    }
                }
                append_utf8(out, *cp);
                break;
            }
            default:
                return std::nullopt;
        }
    }
    return out;
}

inline std::string json_string_or_text(std::string_view value) {
    if (auto s = json_unquote(value)) {
        return std::move(*s);
    }
    return std::string(value);
}

template <class T>
std::optional<T> json_as(std::string_view value) {
    value = trim_json(value);
    if constexpr (std::is_same_v<T, bool>) {
        if (value == "true") {
            return true;
        }
        if (value == "false") {
            return false;
        }
        return std::nullopt;
    } else if constexpr (std::is_same_v<T, std::string>) {
        return json_unquote(value);
    } else if constexpr (std::is_arithmetic_v<T>) {
        T v{};
        const auto r = std::from_chars(value.data(), value.data() + value.size(), v);
        if (r.ec != std::errc() || r.ptr != value.data() + value.size()) {
            return std::nullopt;
        }
        return v;
    } else {
        static_assert(std::is_same_v<T, bool>, "get_or supports bool, numbers and std::string");
    }
}

}  // namespace yuxi::config::detail
