// TOML and JSON files turned into the JSON values the segment holds (docs/design.md,
// "Data model").
//
// Canonical text is nlohmann::json::dump(): compact, object keys sorted. TOML maps onto
// JSON as: integer → integer, finite float → number, boolean → boolean, string → string,
// array → array, table (and inline table, and array of tables) → object/array of objects,
// and local date, local time, local date-time and offset date-time → strings in RFC 3339
// form (see format_date and friends). A float that is nan or ±inf has no JSON form, so it
// fails the whole document, naming the key. docs/configuration.md lists the rules.
//
// Files are someone else's bytes: parsing is total (a value or a DocumentProblem), files
// larger than kMaxDocumentBytes and nesting deeper than kMaxDocumentDepth are refused
// before any parser sees them (toml++ and nlohmann both recurse on nesting, and a file of
// a few hundred kilobytes of `a.a.a...` would overflow the stack).
#pragma once

#include <toml++/toml.h>

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/decoded.hpp"

namespace yuxi::config {

inline constexpr std::size_t kMaxDocumentBytes = 256ULL << 20;
inline constexpr std::size_t kMaxDocumentDepth = 128;

// Why a document cannot be used. `message` names the source, and the line and column or
// the key, and never quotes a value (it may be a secret).
struct DocumentProblem {
    enum class Kind {
        syntax,       // not valid TOML / JSON (including invalid UTF-8), too large, too deep
        unsupported,  // valid, but holds something JSON cannot represent (nan, inf)
    };
    Kind kind = Kind::syntax;
    std::string message;
};

using DocumentResult = Decoded<nlohmann::json, DocumentProblem>;

// Parses TOML text. Problems read "source:line:column: description".
DocumentResult parse_toml_document(std::string_view text, std::string_view source);

// Parses a JSON document. Problems read "source:line:column: description".
DocumentResult parse_json_document(std::string_view text, std::string_view source);

// Why TOML `text` nests deeper than `max_depth` (tables, dotted keys, arrays and inline
// tables together), or nothing. A conservative lexical scan: it never undercounts the
// depth of a document toml++ accepts.
std::optional<std::string> toml_nesting_problem(std::string_view text, std::size_t max_depth);

// Lays `overlay` over `base`: where both hold an object under a key the two merge,
// recursively (documents are at most kMaxDocumentDepth deep); anything else (arrays
// included) in `overlay` replaces what `base` has.
void merge_json(nlohmann::json& base, const nlohmann::json& overlay);

// The canonical text of a value (invalid UTF-8 cannot occur: both parsers refuse it).
[[nodiscard]] std::string canonical(const nlohmann::json& value);

// "1979-05-27"
[[nodiscard]] std::string format_date(const toml::date& d);
// "07:32:00", "07:32:00.999" (fraction as written, trailing zeros dropped, up to ns)
[[nodiscard]] std::string format_time(const toml::time& t);
// "1979-05-27T07:32:00" (local), "1979-05-27T07:32:00Z", "1979-05-27T00:32:00-07:00"
[[nodiscard]] std::string format_date_time(const toml::date_time& dt);

// How a key path is written in errors: a.b, a."x.y", a.b[2].c
[[nodiscard]] std::string key_path_append(std::string_view path, std::string_view key);

}  // namespace yuxi::config
