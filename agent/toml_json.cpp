// TOML → JSON conversion, JSON parsing with positions, and the merge of config files.
#include "toml_json.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace yuxi::config::agent {
namespace {

using nlohmann::json;

bool is_bare_key(std::string_view k) {
    return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    });
}

std::string quote_key(std::string_view k) {
    std::string out = "\"";
    for (const char c : k) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

[[noreturn]] void unrepresentable(std::string_view source, const std::string& path,
                                  std::string_view what) {
    throw DocumentError(DocumentError::Kind::unsupported, std::string(source) + ": key '" + path +
                                                              "' holds " + std::string(what) +
                                                              ", which JSON cannot represent");
}

json convert(const toml::node& node, std::string_view source, const std::string& path) {
    switch (node.type()) {
        case toml::node_type::table: {
            json out = json::object();
            for (const auto& [k, v] : *node.as_table()) {
                out[std::string(k.str())] = convert(v, source, key_path_append(path, k.str()));
            }
            return out;
        }
        case toml::node_type::array: {
            json out = json::array();
            const toml::array& a = *node.as_array();
            for (std::size_t i = 0; i < a.size(); ++i) {
                out.push_back(convert(a[i], source, path + "[" + std::to_string(i) + "]"));
            }
            return out;
        }
        case toml::node_type::string:
            return json(node.as_string()->get());
        case toml::node_type::integer:
            return json(node.as_integer()->get());
        case toml::node_type::floating_point: {
            const double d = node.as_floating_point()->get();
            if (std::isnan(d)) {
                unrepresentable(source, path, "nan");
            }
            if (std::isinf(d)) {
                unrepresentable(source, path, d > 0 ? "inf" : "-inf");
            }
            return json(d);
        }
        case toml::node_type::boolean:
            return json(node.as_boolean()->get());
        case toml::node_type::date:
            return json(format_date(node.as_date()->get()));
        case toml::node_type::time:
            return json(format_time(node.as_time()->get()));
        case toml::node_type::date_time:
            return json(format_date_time(node.as_date_time()->get()));
        case toml::node_type::none:
            break;
    }
    // toml++ never hands out a node without a type; a new TOML type would land here.
    throw DocumentError(DocumentError::Kind::unsupported, std::string(source) + ": key '" + path +
                                                              "' holds a TOML type " +
                                                              "this agent does not know");
}

// nlohmann's message without its "[json.exception...] parse error at line L, column C: "
// prefix and without "; last read: '...'", which quotes the document (maybe a secret).
std::string json_error_description(const std::string& what) {
    std::string desc = what;
    if (const auto col = desc.find("column "); col != std::string::npos) {
        if (const auto colon = desc.find(": ", col); colon != std::string::npos) {
            desc = desc.substr(colon + 2);
        }
    }
    if (const auto last = desc.find("; last read: '"); last != std::string::npos) {
        const auto expected = desc.rfind("'; expected ");
        if (expected != std::string::npos && expected > last) {
            desc = desc.substr(0, last) + desc.substr(expected + 1);
        } else {
            desc = desc.substr(0, last);
        }
    }
    return desc;
}

}  // namespace

std::string key_path_append(std::string_view path, std::string_view key) {
    std::string out(path);
    if (!out.empty()) {
        out += '.';
    }
    out += is_bare_key(key) ? std::string(key) : quote_key(key);
    return out;
}

json toml_to_json(const toml::table& table, std::string_view source) {
    return convert(table, source, "");
}

json parse_toml(std::string_view text, std::string_view source) {
    toml::table table;
    try {
        table = toml::parse(text, source);
    } catch (const toml::parse_error& e) {
        const toml::source_position& at = e.source().begin;
        throw DocumentError(DocumentError::Kind::syntax,
                            std::string(source) + ":" + std::to_string(at.line) + ":" +
                                std::to_string(at.column) + ": " + std::string(e.description()));
    }
    return toml_to_json(table, source);
}

json parse_json(std::string_view text, std::string_view source) {
    try {
        return json::parse(text);
    } catch (const json::parse_error& e) {
        // e.byte is the 1-based position of the byte the parser stopped at.
        const std::size_t stop = std::min<std::size_t>(e.byte, text.size());
        const std::string_view before = text.substr(0, stop > 0 ? stop - 1 : 0);
        const std::size_t line =
            1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
        const std::size_t line_start = before.rfind('\n');
        const std::size_t column =
            before.size() - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
        throw DocumentError(DocumentError::Kind::syntax,
                            std::string(source) + ":" + std::to_string(line) + ":" +
                                std::to_string(column) + ": " + json_error_description(e.what()));
    }
}

void merge_json(json& base, const json& overlay) {
    if (!base.is_object() || !overlay.is_object()) {
        base = overlay;
        return;
    }
    for (const auto& [k, v] : overlay.items()) {
        const auto it = base.find(k);
        if (it != base.end() && it->is_object() && v.is_object()) {
            merge_json(*it, v);
        } else {
            base[k] = v;
        }
    }
}

std::string canonical(const json& value) {
    return value.dump();
}

std::string format_date(const toml::date& d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04u-%02u-%02u", static_cast<unsigned>(d.year),
                  static_cast<unsigned>(d.month), static_cast<unsigned>(d.day));
    return buf;
}

std::string format_time(const toml::time& t) {
    char buf[48];
    std::snprintf(buf, sizeof buf, "%02u:%02u:%02u", static_cast<unsigned>(t.hour),
                  static_cast<unsigned>(t.minute), static_cast<unsigned>(t.second));
    std::string out = buf;
    if (t.nanosecond != 0) {
        std::snprintf(buf, sizeof buf, ".%09u", static_cast<unsigned>(t.nanosecond));
        std::string frac = buf;
        while (frac.back() == '0') {
            frac.pop_back();
        }
        out += frac;
    }
    return out;
}

std::string format_date_time(const toml::date_time& dt) {
    std::string out = format_date(dt.date) + "T" + format_time(dt.time);
    if (dt.offset) {
        const int minutes = dt.offset->minutes;
        if (minutes == 0) {
            out += 'Z';
        } else {
            const int a = std::abs(minutes);
            char buf[16];
            std::snprintf(buf, sizeof buf, "%c%02d:%02d", minutes < 0 ? '-' : '+', a / 60, a % 60);
            out += buf;
        }
    }
    return out;
}

}  // namespace yuxi::config::agent
