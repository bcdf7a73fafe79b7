// Parsing JSON from outside within limits, and reading its fields by type.
#include "core/json_document.hpp"

#include <algorithm>
#include <memory>
#include <new>
#include <unordered_set>
#include <vector>

namespace yuxi::config {
namespace {

using nlohmann::json;

// One SAX pass that checks (depth, duplicate keys) and, when asked, builds the document.
// nlohmann's SAX parser keeps its own state on the heap, so nothing here recurses whatever
// the nesting, and it stops at the first problem. Building in the same pass keeps the cost
// of a checked parse that of one parse.
class Reader : public nlohmann::json_sax<json> {
  public:
    Reader(std::size_t max_depth, bool build) : max_depth_(max_depth), build_(build) {}

    bool null() override { return put(nullptr); }
    bool boolean(bool v) override { return put(v); }
    bool number_integer(number_integer_t v) override { return put(v); }
    bool number_unsigned(number_unsigned_t v) override { return put(v); }
    bool number_float(number_float_t v, const string_t&) override { return put(v); }
    bool string(string_t& v) override { return put(std::move(v)); }
    bool binary(binary_t& v) override { return put(json::binary(std::move(v))); }
    bool start_object(std::size_t) override { return open(json::value_t::object); }
    bool end_object() override { return close(); }
    bool start_array(std::size_t) override { return open(json::value_t::array); }
    bool end_array() override { return close(); }

    // The document built (with build on).
    json& document() noexcept { return root_; }

    bool key(string_t& k) override {
        Level& level = levels_[depth_ - 1];
        bool seen = false;
        if (level.many) {
            seen = !level.many->insert(k).second;
        } else {
            seen = std::find(level.few.begin(), level.few.end(), k) != level.few.end();
            level.few.push_back(k);
            if (level.few.size() > kFewKeys) {
                // A large object: a hash set from here on, so checking stays linear.
                level.many = std::make_unique<std::unordered_set<std::string>>(level.few.begin(),
                                                                               level.few.end());
            }
        }
        if (seen) {
            problem_ = "an object has the key \"" + printable(k) + "\" twice";
            return false;
        }
        if (build_) {
            member_ = &(*containers_.back())[k];
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
    // Where the next value goes: the root, the end of the open array, or the member whose
    // key came last. Pointers to open containers stay valid: a container grows only while
    // it is the innermost open one.
    json* slot() {
        if (containers_.empty()) {
            return &root_;
        }
        json* parent = containers_.back();
        if (parent->is_array()) {
            parent->get_ref<json::array_t&>().emplace_back();
            return &parent->back();
        }
        return member_;
    }

    template <class V>
    bool put(V&& v) {
        if (build_) {
            *slot() = json(std::forward<V>(v));
        }
        return true;
    }

    bool open(json::value_t type) {
        if (depth_ >= max_depth_) {
            problem_ = "nested deeper than " + std::to_string(max_depth_) + " levels";
            return false;
        }
        if (build_) {
            json* container = slot();
            *container = json(type);
            containers_.push_back(container);
        }
        // Levels are reused: an object's key list keeps its capacity for the next one.
        if (depth_ == levels_.size()) {
            levels_.emplace_back();
        }
        Level& level = levels_[depth_++];
        level.few.clear();
        level.many.reset();
        return true;
    }
    bool close() {
        --depth_;
        if (build_) {
            containers_.pop_back();
        }
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

    // The keys seen in one open object (arrays have none): a short list searched in
    // place, until it grows past kFewKeys.
    static constexpr std::size_t kFewKeys = 16;
    struct Level {
        std::vector<std::string> few;
        std::unique_ptr<std::unordered_set<std::string>> many;
    };

    std::size_t max_depth_;
    bool build_;
    std::vector<Level> levels_;
    std::size_t depth_ = 0;
    json root_;
    std::vector<json*> containers_;
    json* member_ = nullptr;
    std::string problem_;
    std::size_t position_ = 0;
};

// Reads `text` within `limits` (building the document into `out` when given); why not,
// or nothing.
std::optional<std::string> read(std::string_view text, const JsonLimits& limits,
                                std::size_t* error_at, json* out) {
    if (text.size() > limits.max_bytes) {
        return "too large: " + std::to_string(text.size()) + " bytes (the limit is " +
               std::to_string(limits.max_bytes) + ")";
    }
    try {
        Reader reader(limits.max_depth, out != nullptr);
        if (!json::sax_parse(text.begin(), text.end(), &reader)) {
            if (error_at != nullptr) {
                *error_at = reader.position();
            }
            return reader.problem().empty() ? std::string("not JSON") : reader.problem();
        }
        if (out != nullptr) {
            *out = std::move(reader.document());
        }
    } catch (const std::bad_alloc&) {
        return std::string("out of memory while reading it");
    } catch (const std::exception&) {
        return std::string("not JSON");
    }
    return std::nullopt;
}

}  // namespace

Decoded<json> parse_json(std::string_view text, const JsonLimits& limits, std::size_t* error_at) {
    json doc;
    if (auto why = read(text, limits, error_at, &doc)) {
        return refuse(std::move(*why));
    }
    return doc;
}

std::optional<std::string> check_json_text(std::string_view text, const JsonLimits& limits) {
    return read(text, limits, nullptr, nullptr);
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
