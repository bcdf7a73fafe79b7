// TOML → JSON conversion, JSON parsing with positions, and the merge of config files.
#include "core/toml_json.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/json_document.hpp"

namespace yuxi::config {
namespace {

using nlohmann::json;

// Thrown inside convert() only, and caught by parse_toml_document: the conversion is a
// recursion over a tree whose depth the scan has bounded.
struct Unrepresentable {
    std::string message;
};

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
    throw Unrepresentable{std::string(source) + ": key '" + path + "' holds " + std::string(what) +
                          ", which JSON cannot represent"};
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
    throw Unrepresentable{std::string(source) + ": key '" + path +
                          "' holds a TOML type this agent does not know"};
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

DocumentResult parse_toml_document(std::string_view text, std::string_view source) {
    const auto problem = [&](std::string message) {
        return DocumentResult::refused({DocumentProblem::Kind::syntax, std::move(message)});
    };
    if (text.size() > kMaxDocumentBytes) {
        return problem(std::string(source) + ": " + std::to_string(text.size()) +
                       " bytes, larger than the limit of " + std::to_string(kMaxDocumentBytes));
    }
    if (auto deep = toml_nesting_problem(text, kMaxDocumentDepth)) {
        return problem(std::string(source) + ":" + *deep);
    }
    try {
        const toml::table table = toml::parse(text, source);
        return convert(table, source, "");
    } catch (const toml::parse_error& e) {
        const toml::source_position& at = e.source().begin;
        return problem(std::string(source) + ":" + std::to_string(at.line) + ":" +
                       std::to_string(at.column) + ": " + std::string(e.description()));
    } catch (Unrepresentable& u) {
        return DocumentResult::refused({DocumentProblem::Kind::unsupported, std::move(u.message)});
    } catch (const std::bad_alloc&) {
        return problem(std::string(source) + ": out of memory while parsing it");
    } catch (const std::exception&) {
        return problem(std::string(source) + ": cannot be converted to JSON");
    }
}

DocumentResult parse_json_document(std::string_view text, std::string_view source) {
    std::size_t at = 0;
    auto doc = parse_json(text, {kMaxDocumentBytes, kMaxDocumentDepth}, &at);
    if (doc) {
        return std::move(*doc);
    }
    const std::string_view before = text.substr(0, std::min(at, text.size()));
    const std::size_t line =
        1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
    const std::size_t line_start = before.rfind('\n');
    const std::size_t column =
        before.size() - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
    return DocumentResult::refused(
        {DocumentProblem::Kind::syntax, std::string(source) + ":" + std::to_string(line) + ":" +
                                            std::to_string(column) + ": " + doc.reason()});
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

}  // namespace yuxi::config

namespace yuxi::config {
namespace {

// The lexical state of the nesting scan.
class TomlDepthScan {
  public:
    TomlDepthScan(std::string_view text, std::size_t max_depth)
        : text_(text), max_depth_(max_depth) {}

    std::optional<std::string> run() {
        while (i_ < text_.size() && problem_.empty()) {
            step();
        }
        if (!problem_.empty()) {
            return problem_;
        }
        return std::nullopt;
    }

  private:
    struct Frame {
        char open;          // '{' or '['
        std::size_t depth;  // of the keys ('{') or elements ('[') inside it
    };

    void step() {
        const char c = text_[i_];
        if (c == '#') {
            skip_to_line_end();
        } else if (c == '"' || c == '\'') {
            skip_string(c);
            component_started_ = true;
        } else if (c == '\n') {
            ++line_;
            ++i_;
            if (stack_.empty()) {
                begin_key(header_depth_);
            }
        } else if (in_key_) {
            key_char(c);
        } else {
            value_char(c);
        }
    }

    void begin_key(std::size_t base) {
        in_key_ = true;
        key_base_ = base;
        components_ = 1;
        component_started_ = false;
    }

    void key_char(char c) {
        ++i_;
        if (c == '[' && stack_.empty() && !component_started_) {
            header();
        } else if (c == '.') {
            ++components_;
        } else if (c == '=') {
            in_key_ = false;
            value_depth_ = key_base_ + components_;
            check(value_depth_);
        } else if (c == '}' && !stack_.empty()) {
            close();
        } else if (c != ' ' && c != '\t' && c != '\r') {
            component_started_ = true;
        }
    }

    void value_char(char c) {
        ++i_;
        if (c == '{') {
            stack_.push_back({'{', value_depth_});
            begin_key(value_depth_);
        } else if (c == '[') {
            stack_.push_back({'[', value_depth_ + 1});
            value_depth_ += 1;
            check(value_depth_);
        } else if (c == '}' || c == ']') {
            close();
        } else if (c == ',' && !stack_.empty()) {
            if (stack_.back().open == '{') {
                begin_key(stack_.back().depth);
            } else {
                value_depth_ = stack_.back().depth;
            }
        }
    }

    void close() {
        if (!stack_.empty()) {
            stack_.pop_back();
        }
        in_key_ = false;
        value_depth_ = stack_.empty() ? header_depth_ : stack_.back().depth;
    }

    // `[a.b."c"]` or `[[a.b]]`: the tables the following keys go into.
    void header() {
        std::size_t components = 1;
        bool array = i_ < text_.size() && text_[i_] == '[';
        while (i_ < text_.size() && text_[i_] != ']' && text_[i_] != '\n') {
            const char c = text_[i_];
            if (c == '"' || c == '\'') {
                skip_string(c);
                continue;
            }
            components += c == '.' ? 1 : 0;
            ++i_;
        }
        header_depth_ = components + (array ? 1 : 0);
        check(header_depth_ + 1);
        skip_to_line_end();
    }

    void skip_to_line_end() {
        while (i_ < text_.size() && text_[i_] != '\n') {
            ++i_;
        }
    }

    // A string starting at i_ with quote `q`, single- or multi-line; escapes only in "".
    void skip_string(char q) {
        const bool multi = text_.substr(i_, 3) == std::string_view(q == '"' ? "\"\"\"" : "'''");
        i_ += multi ? 3 : 1;
        while (i_ < text_.size()) {
            const char c = text_[i_];
            if (c == '\\' && q == '"') {
                i_ += 2;
                continue;
            }
            if (c == '\n') {
                ++line_;
                if (!multi) {
                    return;  // unterminated: toml++ refuses it
                }
            }
            if (c == q && (!multi || text_.substr(i_, 3) == std::string(3, q))) {
                i_ += multi ? 3 : 1;
                // A multi-line string may end in up to two more quotes of its own.
                while (multi && i_ < text_.size() && text_[i_] == q) {
                    ++i_;
                }
                return;
            }
            ++i_;
        }
    }

    void check(std::size_t depth) {
        if (depth > max_depth_ && problem_.empty()) {
            problem_ = std::to_string(line_) + ": tables and arrays nested deeper than " +
                       std::to_string(max_depth_) + " levels";
        }
    }

    std::string_view text_;
    std::size_t max_depth_;
    std::size_t i_ = 0;
    std::size_t line_ = 1;
    std::string problem_;
    std::vector<Frame> stack_;
    std::size_t header_depth_ = 0;
    bool in_key_ = true;
    std::size_t key_base_ = 0;
    std::size_t components_ = 1;
    bool component_started_ = false;
    std::size_t value_depth_ = 0;
};

}  // namespace

std::optional<std::string> toml_nesting_problem(std::string_view text, std::size_t max_depth) {
    return TomlDepthScan(text, max_depth).run();
}

}  // namespace yuxi::config
