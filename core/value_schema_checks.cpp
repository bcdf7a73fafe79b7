// What a schema may contain, and what a value may hold, before Valijson sees them.
#include "core/value_schema_checks.hpp"

#include <regex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/text.hpp"

namespace yuxi::config {
namespace {

using nlohmann::json;

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// A URI fragment with its %XX escapes decoded; nothing if one is malformed.
std::optional<std::string> percent_decoded(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size() || hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0) {
            return std::nullopt;
        }
        out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
        i += 2;
    }
    return out;
}

class Inspector {
  public:
    explicit Inspector(const json& root) : root_(root) {}

    Decoded<SchemaTraits> run() {
        walk(root_, true);
        // References are followed here, not by recursion: a chain of them is as long as
        // the document allows, the walk of each target only as deep as the document.
        while (error_.empty() && !pending_.empty()) {
            const json* target = pending_.back();
            pending_.pop_back();
            if (!walked_.contains(target)) {
                walk(*target, false);
            }
        }
        if (error_.empty() && has_cycle()) {
            error_ =
                "a $ref or allOf/anyOf/oneOf/not/if chain leads back to itself without "
                "descending into the value, so validating would never end";
        }
        if (!error_.empty()) {
            return refuse(error_);
        }
        return traits_;
    }

  private:
    void fail(std::string why) {
        if (error_.empty()) {
            error_ = std::move(why);
        }
    }

    // A schema that applies to the same value as `from` (the edges a cycle can run on).
    void same_value(const json& from, const json& to) {
        same_[&from].push_back(&to);
        walk(to, false);
    }

    void check_regex(const std::string& pattern) {
        traits_.uses_regex = true;
        if (pattern.size() > kMaxRegexBytes) {
            fail("a pattern is longer than " + std::to_string(kMaxRegexBytes) + " bytes");
            return;
        }
        try {
            const std::regex re(pattern);
            (void)re;
        } catch (const std::exception&) {
            fail("the pattern \"" + printable(pattern, 64) +
                 "\" is not a regular expression std::regex (ECMAScript) accepts");
        }
    }

    void reference(const json& from, const json& ref) {
        if (!ref.is_string()) {
            fail("a $ref is not a string");
            return;
        }
        const std::string& text = ref.get_ref<const std::string&>();
        if (!text.starts_with('#')) {
            fail("the $ref \"" + printable(text, 64) +
                 "\" is not local (only \"#\" and \"#/...\" are supported)");
            return;
        }
        const auto fragment = percent_decoded(std::string_view(text).substr(1));
        try {
            if (!fragment || (!fragment->empty() && fragment->front() != '/')) {
                throw std::invalid_argument("not a JSON pointer");
            }
            const json& target = root_.at(json::json_pointer(*fragment));
            same_[&from].push_back(&target);
            pending_.push_back(&target);
        } catch (const std::exception&) {
            fail("the $ref \"" + printable(text, 64) + "\" points to nothing in the schema");
        }
    }

    void walk_each(const json& holder, const char* keyword) {
        if (!holder.is_object()) {
            fail(std::string("\"") + keyword + "\" is not an object");
            return;
        }
        for (const auto& [name, sub] : holder.items()) {
            if (std::string_view(keyword) == "patternProperties") {
                check_regex(name);
            }
            walk(sub, false);
        }
    }

    void walk(const json& s, bool is_root) {
        if (!error_.empty() || !walked_.insert(&s).second || s.is_boolean()) {
            return;
        }
        if (!s.is_object()) {
            fail("a schema is " + std::string(json_type(s)) + ", not an object or a boolean");
            return;
        }
        for (const auto& [k, v] : s.items()) {
            if (k == "$ref") {
                reference(s, v);
            } else if (k == "$id" && !is_root) {
                fail("\"$id\" below the root is not supported");
            } else if (k == "allOf" || k == "anyOf" || k == "oneOf") {
                if (!v.is_array() || v.empty()) {
                    fail("\"" + k + "\" is not a non-empty array");
                    return;
                }
                for (const json& sub : v) {
                    same_value(s, sub);
                }
            } else if (k == "not" || k == "if" || k == "then" || k == "else") {
                same_value(s, v);
            } else if (k == "dependencies" && v.is_object()) {
                for (const auto& [name, dep] : v.items()) {
                    if (!dep.is_array()) {
                        same_value(s, dep);
                    }
                }
            } else if (k == "properties" || k == "patternProperties" || k == "definitions" ||
                       k == "$defs") {
                walk_each(v, k.c_str());
            } else if (k == "additionalProperties" || k == "additionalItems" || k == "contains" ||
                       k == "propertyNames") {
                walk(v, false);
            } else if (k == "items") {
                if (v.is_array()) {
                    for (const json& sub : v) {
                        walk(sub, false);
                    }
                } else {
                    walk(v, false);
                }
            } else if (k == "pattern" && v.is_string()) {
                check_regex(v.get_ref<const std::string&>());
            } else if (k == "format") {
                traits_.uses_regex = true;  // Valijson checks dates and times with std::regex
            } else if (k == "uniqueItems" && v.is_boolean() && v.get<bool>()) {
                traits_.uses_unique = true;
            }
        }
    }

    static std::string_view json_type(const json& j) {
        return j.is_array()    ? "an array"
               : j.is_string() ? "a string"
               : j.is_null()   ? "null"
                               : "a number";
    }

    // A cycle among the same-value edges, by an iterative depth-first search.
    bool has_cycle() const {
        enum class Color { grey, black };
        std::unordered_map<const json*, Color> color;
        for (const auto& [start, unused] : same_) {
            if (color.contains(start)) {
                continue;
            }
            std::vector<std::pair<const json*, std::size_t>> stack = {{start, 0}};
            color[start] = Color::grey;
            while (!stack.empty()) {
                auto& [node, next] = stack.back();
                const auto it = same_.find(node);
                if (it == same_.end() || next >= it->second.size()) {
                    color[node] = Color::black;
                    stack.pop_back();
                    continue;
                }
                const json* child = it->second[next++];
                const auto c = color.find(child);
                if (c == color.end()) {
                    color[child] = Color::grey;
                    stack.emplace_back(child, 0);
                } else if (c->second == Color::grey) {
                    return true;
                }
            }
        }
        return false;
    }

    const json& root_;
    SchemaTraits traits_;
    std::string error_;
    std::unordered_set<const json*> walked_;
    std::vector<const json*> pending_;
    std::unordered_map<const json*, std::vector<const json*>> same_;
};

std::string escape_token(std::string_view token) {
    std::string out;
    for (const char c : token) {
        out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
    }
    return out;
}

}  // namespace

Decoded<SchemaTraits> inspect_schema(const json& schema) {
    return Inspector(schema).run();
}

std::optional<Violation> check_value_shape(const json& value, const SchemaTraits& traits) {
    if (!traits.uses_regex && !traits.uses_unique) {
        return std::nullopt;
    }
    const auto too_long = [](std::string pointer, std::size_t bytes) {
        return Violation{std::move(pointer),
                         "pattern",
                         "a string of " + std::to_string(bytes) + " bytes is longer than the " +
                             std::to_string(kMaxPatternSubjectBytes) +
                             " a regular expression is run on",
                         {}};
    };
    std::vector<std::pair<const json*, std::string>> stack = {{&value, std::string()}};
    while (!stack.empty()) {
        auto [node, pointer] = std::move(stack.back());
        stack.pop_back();
        if (node->is_string() && traits.uses_regex &&
            node->get_ref<const std::string&>().size() > kMaxPatternSubjectBytes) {
            return too_long(pointer, node->get_ref<const std::string&>().size());
        }
        if (node->is_array()) {
            if (traits.uses_unique && node->size() > kMaxUniqueItems) {
                return Violation{pointer,
                                 "uniqueItems",
                                 "an array of " + std::to_string(node->size()) +
                                     " items is longer than the " +
                                     std::to_string(kMaxUniqueItems) + " uniqueItems is run on",
                                 {}};
            }
            for (std::size_t i = 0; i < node->size(); ++i) {
                stack.emplace_back(&(*node)[i], pointer + "/" + std::to_string(i));
            }
        } else if (node->is_object()) {
            for (const auto& [k, v] : node->items()) {
                if (traits.uses_regex && k.size() > kMaxPatternSubjectBytes) {
                    return too_long(pointer + "/" + escape_token(k), k.size());
                }
                stack.emplace_back(&v, pointer + "/" + escape_token(k));
            }
        }
    }
    return std::nullopt;
}

}  // namespace yuxi::config
