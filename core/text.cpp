// Small text helpers.
#include "core/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace yuxi::config {
namespace {

bool space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

template <class T>
std::optional<T> parse_whole(std::string_view s) noexcept {
    T out{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
        return std::nullopt;
    }
    return out;
}

}  // namespace

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string one_line(std::string_view text) {
    std::string out;
    bool pending_space = false;
    for (const char c : text) {
        if (space(c)) {
            pending_space = !out.empty();
            continue;
        }
        if (pending_space) {
            out += ' ';
            pending_space = false;
        }
        out += c;
    }
    return out;
}

std::string printable(std::string_view s, std::size_t max) {
    std::string out;
    for (const char c : s.substr(0, max)) {
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return s.size() > max ? out + "..." : out;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) noexcept {
    return parse_whole<std::uint64_t>(s);
}

std::optional<std::int64_t> parse_i64(std::string_view s) noexcept {
    if (s.starts_with('+')) {
        return std::nullopt;
    }
    return parse_whole<std::int64_t>(s);
}

}  // namespace yuxi::config
