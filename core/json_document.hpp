// JSON from outside, read safely: parsing within limits, and typed fields of an object.
//
// Every JSON document the agent, the CLI or the injector reads from someone else goes
// through parse_json(), then through a Fields reader:
//
//   auto doc = parse_json(text, {.max_bytes = 1 << 20});
//   if (!doc) return refuse(doc.reason());
//   Fields f(*doc, "batch");
//   const auto revision = f.u64("revision", 1);          // present, unsigned, >= 1
//   const auto op = f.one_of("op", {"U", "D"});
//   if (!f.ok()) return refuse(f.error());               // "batch: \"op\" is a number, ..."
//
// Nothing here throws (nlohmann's value()/get<>() throw on a type mismatch, which is why
// decoders use this instead), nothing recurses on the input, and memory stays within a
// constant factor of the input, which is itself bounded by `max_bytes`.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "core/decoded.hpp"

namespace yuxi::config {

// The deepest value the agent publishes: clients decode values with recursive parsers
// (Python's json has a recursion limit of 1000).
inline constexpr std::size_t kMaxValueDepth = 256;

struct JsonLimits {
    std::size_t max_bytes = 1 << 20;
    // Deeper nesting is refused before anything is built: nlohmann's dump(), comparison
    // and copy recurse, so a 200,000-deep array would overflow the stack later.
    std::size_t max_depth = 64;
};

// The document, or why not: too large, too deep, not JSON (including invalid UTF-8), or
// an object with a duplicate key (which JSON parsers resolve differently, so a signer
// and a reader could see different documents).
// `error_at`, if given, receives the byte offset of a syntax error.
Decoded<nlohmann::json> parse_json(std::string_view text, const JsonLimits& limits,
                                   std::size_t* error_at = nullptr);

// Why `text` is not one JSON value within `limits`, or nothing if it is. Checks without
// building anything: for values carried as JSON text inside a document.
std::optional<std::string> check_json_text(std::string_view text, const JsonLimits& limits);

// The JSON type of `j` in words, for messages: "a string", "a number", "null", ...
std::string_view json_type_name(const nlohmann::json& j) noexcept;

// Reads typed fields of one JSON object. The first problem is kept (error()), and every
// read after it returns nothing: a decoder reads all its fields, then checks ok() once.
class Fields {
  public:
    // `what` names the object in messages ("batch", "entry 3"). If `object` is not an
    // object, that is the error.
    Fields(const nlohmann::json& object, std::string what);

    bool ok() const noexcept { return error_.empty(); }
    const std::string& error() const noexcept { return error_; }
    // Records a problem the caller found itself (the first one wins).
    void fail(std::string_view field, std::string_view problem);

    bool has(std::string_view name) const noexcept;

    // Required fields: absent or of another type is an error.
    std::optional<std::uint64_t> u64(std::string_view name, std::uint64_t min = 0,
                                     std::uint64_t max = kMaxU64);
    std::optional<std::int64_t> i64(std::string_view name, std::int64_t min = kMinI64,
                                    std::int64_t max = kMaxI64);
    std::optional<bool> boolean(std::string_view name);
    // A string of at most `max_bytes` bytes; empty only if `allow_empty`.
    std::optional<std::string_view> text(std::string_view name, std::size_t max_bytes,
                                         bool allow_empty = false);
    // A string that is one of `choices`.
    std::optional<std::string_view> one_of(std::string_view name,
                                           std::initializer_list<std::string_view> choices);
    // An array of at most `max_items`; null on error.
    const nlohmann::json* array(std::string_view name, std::size_t max_items);
    const nlohmann::json* object(std::string_view name);

    // Optional fields: absent gives `fallback`; present with a wrong type or range is
    // still an error (a field we know, written wrong, is never silently ignored).
    std::uint64_t u64_or(std::string_view name, std::uint64_t fallback, std::uint64_t min = 0,
                         std::uint64_t max = kMaxU64);
    std::string_view text_or(std::string_view name, std::string_view fallback,
                             std::size_t max_bytes, bool allow_empty = true);

    static constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();
    static constexpr std::int64_t kMinI64 = std::numeric_limits<std::int64_t>::min();
    static constexpr std::int64_t kMaxI64 = std::numeric_limits<std::int64_t>::max();

  private:
    // The field, or null after recording why (absent, or a wrong type).
    const nlohmann::json* find(std::string_view name, nlohmann::json::value_t type);

    const nlohmann::json* object_ = nullptr;
    std::string what_;
    std::string error_;
};

}  // namespace yuxi::config
