// Conversion of TOML and JSON documents into the JSON values the segment holds (DESIGN.md §2).
//
// Canonical text is nlohmann::json::dump(): compact, object keys sorted. TOML maps onto
// JSON as: integer → integer, finite float → number, boolean → boolean, string → string,
// array → array, table (and inline table, and array of tables) → object/array of objects,
// and local date, local time, local date-time and offset date-time → strings in RFC 3339
// form (see format_date and friends). A float that is nan or ±inf has no JSON form, so it
// fails the whole document, naming the key. docs/configuration.md lists the rules.
#pragma once

#include <toml++/toml.h>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>

namespace yuxi::config::agent {

// A document that cannot be used. what() names the source, and the line and column or the
// key, and never quotes a value.
class DocumentError : public std::runtime_error {
  public:
    enum class Kind {
        syntax,       // not valid TOML / JSON (this includes invalid UTF-8)
        unsupported,  // valid, but holds something JSON cannot represent (nan, inf)
    };
    DocumentError(Kind kind, const std::string& message)
        : std::runtime_error(message), kind_(kind) {}
    Kind kind() const noexcept { return kind_; }

  private:
    Kind kind_;
};

// Converts a parsed TOML table. `source` names the document in errors.
[[nodiscard]] nlohmann::json toml_to_json(const toml::table& table, std::string_view source);

// Parses TOML text. Errors read "source:line:column: description".
[[nodiscard]] nlohmann::json parse_toml(std::string_view text, std::string_view source);

// Parses JSON text. Errors read "source:line:column: description".
[[nodiscard]] nlohmann::json parse_json(std::string_view text, std::string_view source);

// Lays `overlay` over `base`: where both hold an object under a key the two merge,
// recursively; anything else (arrays included) in `overlay` replaces what `base` has.
void merge_json(nlohmann::json& base, const nlohmann::json& overlay);

// The canonical text of a value.
[[nodiscard]] std::string canonical(const nlohmann::json& value);

// "1979-05-27"
[[nodiscard]] std::string format_date(const toml::date& d);
// "07:32:00", "07:32:00.999" (fraction as written, trailing zeros dropped, up to ns)
[[nodiscard]] std::string format_time(const toml::time& t);
// "1979-05-27T07:32:00" (local), "1979-05-27T07:32:00Z", "1979-05-27T00:32:00-07:00"
[[nodiscard]] std::string format_date_time(const toml::date_time& dt);

// How a key path is written in errors: a.b, a."x.y", a.b[2].c
[[nodiscard]] std::string key_path_append(std::string_view path, std::string_view key);

}  // namespace yuxi::config::agent
