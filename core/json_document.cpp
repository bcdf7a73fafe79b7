// Parsing JSON from outside within limits, and reading its fields by type.
#include "core/json_document.hpp"

#include <algorithm>
#include <new>
#include <unordered_set>
#include <vector>

namespace yuxi::config {
namespace {

using nlohmann::json;

// A SAX pass that builds nothing: nlohmann's SAX parser keeps its own state on the heap,
// so this never recurses whatever the nesting, and it stops at the first problem.
class Checker : public nlohmann::json_sax<json> {
  public:
    explicit Checker(std::size_t max_depth) : max_depth_(max_depth) {}

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return open(); }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(); }
    bool end_array() override { return close(); }

    bool key(string_t& k) override {
        auto& keys = levels_.back();
        if (!keys.insert(k).second) {
            problem_ = "an object has the key \"" + printable(k) + "\" twice";
            return false;
        }
        return true;
    }

    bool parse_error(std::size_t position, const std::string&,
                     const nlohmann::detail::exception& ex) override {
        position_ = position;
        problem_ = "not JSON: " + without_input(ex.what());
        return false;
    }

    const std::string& problem() const noexcept { return problem_; }
    std::size_t position() const noexcept { return position_; }

  private:
    bool open() {
        if (levels_.size() >= max_depth_) {
            problem_ = "nested deeper than " + std::to_string(max_depth_) + " levels";
            return false;
        }
        levels_.emplace_back();
        return true;
    }
    bool close() {
        levels_.pop_back();
        return true;
    }

    // A key in a message: at most 64 printable ASCII bytes (it is someone else's text).
    static std::string printable(std::string_view s) {
        std::string out;
        for (const char c : s.substr(0, 64)) {
            out += (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? c : '?';
        }
        return s.size() > 64 ? out + "..." : out;
    }

    // nlohmann's message without its "[json.exception...]" prefix and its "last read:"
    // quote of the input, which may hold a secret of a file being parsed.
    static std::string without_input(std::string_view what) {
        if (const auto colon = what.find(": ");
            what.starts_with("[json.exception") && colon != std::string_view::npos) {
            what.remove_prefix(colon + 2);
        }
        if (const auto p = what.find(": ");
            what.starts_with("parse error") && p != std::string_view::npos) {
            what.remove_prefix(p + 2);
        }
        return std::string(what.substr(0, what.find("; last read")));
    }

    std::size_t max_depth_;
    // The keys seen in each open object (arrays get an empty set).
    std::vector<std::unordered_set<std::string>> levels_;
    std::string problem_;
    std::size_t position_ = 0;
};

std::optional<std::string> check(std::string_view text, const JsonLimits& limits,
                                 std::size_t* error_at) {
    if (text.size() > limits.max_bytes) {
        return "too large: " + std::to_string(text.size()) + " bytes (the limit is " +
               std::to_string(limits.max_bytes) + ")";
    }
    try {
        Checker checker(limits.max_depth);
        if (!json::sax_parse(text.begin(), text.end(), &checker)) {
            if (error_at != nullptr) {
                *error_at = checker.position();
            }
            return checker.problem().empty() ? std::string("not JSON") : checker.problem();
        }
    } catch (const std::bad_alloc&) {
        return std::string("out of memory while checking it");
    } catch (const std::exception&) {
        return std::string("not JSON");
    }
    return std::nullopt;
}

}  // namespace

Decoded<json> parse_json(std::string_view text, const JsonLimits& limits, std::size_t* error_at) {
    if (auto why = check(text, limits, error_at)) {
        return refuse(std::move(*why));
    }
    try {
        json doc = json::parse(text.begin(), text.end(), nullptr, false);
        if (doc.is_discarded()) {
            return refuse("not JSON");
        }
        return doc;
    } catch (const std::bad_alloc&) {
        return refuse("out of memory while parsing it");
    } catch (const std::exception&) {
        return refuse("not JSON");
    }
}

std::optional<std::string> check_json_text(std::string_view text, const JsonLimits& limits) {
    return check(text, limits, nullptr);
}

std::string_view json_type_name(const json& j) noexcept {
    switch (j.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::object:
            return "an object";
        case json::value_t::array:
            return "an array";
        case json::value_t::string:
            return "a string";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::number_integer:
            return "a negative integer";
        case json::value_t::number_unsigned:
            return "an integer";
        case json::value_t::number_float:
            return "a fractional or out-of-range number";
        case json::value_t::binary:
            return "binary";
        case json::value_t::discarded:
            return "nothing";
    }
    return "something else";
}

Fields::Fields(const json& object, std::string what) : what_(std::move(what)) {
    if (object.is_object()) {
        object_ = &object;
    } else {
        error_ = what_ + " is " + std::string(json_type_name(object)) + ", not an object";
    }
}

void Fields::fail(std::string_view field, std::string_view problem) {
    if (error_.empty()) {
        error_ = what_ + ": \"" + std::string(field) + "\" " + std::string(problem);
    }
}

bool Fields::has(std::string_view name) const noexcept {
    return object_ != nullptr && object_->find(name) != object_->end();
}

const json* Fields::find(std::string_view name, json::value_t type) {
    if (!ok()) {
        return nullptr;
    }
    const auto it = object_->find(name);
    if (it == object_->end()) {
        fail(name, "is missing");
        return nullptr;
    }
    // Integers: nlohmann keeps non-negative ones as unsigned; a signed field takes both.
    const json::value_t t = it->type();
    const bool fits =
        t == type || (type == json::value_t::number_integer && t == json::value_t::number_unsigned);
    if (!fits) {
        json expected(type);
        std::string what = "is " + std::string(json_type_name(*it)) + ", not ";
        what += type == json::value_t::number_unsigned ? std::string("a whole number")
                                                       : std::string(json_type_name(expected));
        fail(name, what);
        return nullptr;
    }
    return &*it;
}

std::optional<std::uint64_t> Fields::u64(std::string_view name, std::uint64_t min,
                                         std::uint64_t max) {
    const json* j = find(name, json::value_t::number_unsigned);
    if (j == nullptr) {
        return std::nullopt;
    }
    const auto n = j->get_ref<const json::number_unsigned_t&>();
    if (n < min || n > max) {
        fail(name, "is " + std::to_string(n) + ", outside " + std::to_string(min) + ".." +
                       std::to_string(max));
        return std::nullopt;
    }
    return n;
}

std::optional<std::int64_t> Fields::i64(std::string_view name, std::int64_t min, std::int64_t max) {
    const json* j = find(name, json::value_t::number_integer);
    if (j == nullptr) {
        return std::nullopt;
    }
    std::int64_t n = 0;
    if (j->is_number_unsigned()) {
        const auto u = j->get_ref<const json::number_unsigned_t&>();
        if (u > static_cast<std::uint64_t>(kMaxI64)) {
            fail(name, "is " + std::to_string(u) + ", too large");
            return std::nullopt;
        }
        n = static_cast<std::int64_t>(u);
    } else {
        n = j->get_ref<const json::number_integer_t&>();
    }
    if (n < min || n > max) {
        fail(name, "is " + std::to_string(n) + ", outside " + std::to_string(min) + ".." +
                       std::to_string(max));
        return std::nullopt;
    }
    return n;
}

std::optional<bool> Fields::boolean(std::string_view name) {
    const json* j = find(name, json::value_t::boolean);
    return j != nullptr ? std::optional<bool>(j->get_ref<const json::boolean_t&>()) : std::nullopt;
}

std::optional<std::string_view> Fields::text(std::string_view name, std::size_t max_bytes,
                                             bool allow_empty) {
    const json* j = find(name, json::value_t::string);
    if (j == nullptr) {
        return std::nullopt;
    }
    const std::string& s = j->get_ref<const std::string&>();
    if (s.empty() && !allow_empty) {
        fail(name, "is empty");
        return std::nullopt;
    }
    if (s.size() > max_bytes) {
        fail(name,
             "is " + std::to_string(s.size()) + " bytes, longer than " + std::to_string(max_bytes));
        return std::nullopt;
    }
    return std::string_view(s);
}

std::optional<std::string_view> Fields::one_of(std::string_view name,
                                               std::initializer_list<std::string_view> choices) {
    const auto s = text(name, 64, true);
    if (!s) {
        return std::nullopt;
    }
    if (std::find(choices.begin(), choices.end(), *s) == choices.end()) {
        std::string list;
        for (const std::string_view c : choices) {
            list += (list.empty() ? "" : ", ") + std::string(c);
        }
        fail(name, "is not one of " + list);
        return std::nullopt;
    }
    return s;
}

const json* Fields::array(std::string_view name, std::size_t max_items) {
    const json* j = find(name, json::value_t::array);
    if (j != nullptr && j->size() > max_items) {
        fail(name,
             "has " + std::to_string(j->size()) + " items, more than " + std::to_string(max_items));
        return nullptr;
    }
    return j;
}

const json* Fields::object(std::string_view name) {
    return find(name, json::value_t::object);
}

std::uint64_t Fields::u64_or(std::string_view name, std::uint64_t fallback, std::uint64_t min,
                             std::uint64_t max) {
    if (!has(name)) {
        return fallback;
    }
    return u64(name, min, max).value_or(fallback);
}

std::string_view Fields::text_or(std::string_view name, std::string_view fallback,
                                 std::size_t max_bytes, bool allow_empty) {
    if (!has(name)) {
        return fallback;
    }
    return text(name, max_bytes, allow_empty).value_or(fallback);
}

}  // namespace yuxi::config
