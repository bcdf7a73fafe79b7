// JSON Schemas per key: the one rule that every writer enforces before it writes and every
// agent applies before it publishes (docs/design.md, "Validation").
//
// A rule is (namespace, key pattern, schema). A pattern is a key, or a key with `*`
// wildcards (any run of characters, also none). The rule of a key is its exact pattern if
// there is one, else the matching pattern with the most literal characters (ties: the
// smaller pattern). A key without a rule takes any JSON value.
//
// Schemas are JSON Schema draft 7, validated with Valijson (draft 4 and 6 documents work
// where they agree with 7). Before compiling, a schema is checked for what could hurt the
// process that runs it: only local references ("#", "#/..."), no cycle of references that
// never descends into the value (it would recurse forever on any value), patterns that
// std::regex compiles, and bounded sizes. Validation itself is bounded by the value: a
// string longer than kMaxPatternSubjectBytes is refused where the schema uses regular
// expressions (libstdc++'s std::regex recurses per character), and an array longer than
// kMaxUniqueItems where it uses uniqueItems (a quadratic check).
//
// The agents get the rules with the data: the table yuxi_config_value_schemas is mirrored
// (deploy/sql/003) into the metadata document kValueSchemasKey, which the log, Redis and the
// L2 snapshot carry like any other entry. Every function here is total: outside input gives
// a refusal or a violation, never an exception.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decoded.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config {

// The metadata key of the mirror document: {"v":1,"schemas":[{namespace, pattern, schema}]}.
inline constexpr std::string_view kValueSchemasKey = "yuxi_config.value_schemas";
inline constexpr std::size_t kMaxSchemaDocumentBytes = 8 << 20;  // the whole mirror
inline constexpr std::size_t kMaxSchemaBytes = 1 << 20;          // one schema
inline constexpr std::size_t kMaxSchemaDepth = 64;
inline constexpr std::size_t kMaxSchemaRules = 10000;
inline constexpr std::size_t kMaxKeyPatternBytes = 255;  // system_configs.key is VARCHAR(255)
inline constexpr std::size_t kMaxRegexBytes = 1024;
inline constexpr std::size_t kMaxPatternSubjectBytes = 16384;
inline constexpr std::size_t kMaxUniqueItems = 10000;

struct SchemaRule {
    Namespace ns = Namespace::config;
    std::string pattern;
    std::string schema;  // JSON text, canonical (compact)

    bool operator==(const SchemaRule&) const = default;
};

// Why a value breaks its rule: where (an RFC 6901 pointer into the value, "" for the whole
// value), which keyword, and the validator's words.
struct Violation {
    std::string pointer;
    std::string rule;     // required, type, enum, maximum, pattern, ... or "schema"
    std::string detail;   // e.g. "missing required property 'models'"
    std::string pattern;  // the rule's key pattern

    // "/models: required (missing required property 'models')"; the pointer of the whole
    // value is shown as "/".
    std::string message() const;
};

// A compiled set of rules. Cheap to copy (shared, immutable); safe to use from many
// threads at once.
class ValueSchemas {
  public:
    ValueSchemas();  // no rules: every value is valid
    ~ValueSchemas();
    ValueSchemas(const ValueSchemas&);
    ValueSchemas& operator=(const ValueSchemas&);
    ValueSchemas(ValueSchemas&&) noexcept;
    ValueSchemas& operator=(ValueSchemas&&) noexcept;

    // Compiles every rule; the first unusable one refuses the set, naming its pattern.
    static Decoded<ValueSchemas> compile(std::vector<SchemaRule> rules);
    // The mirror document (kValueSchemasKey), compiled.
    static Decoded<ValueSchemas> from_document(std::string_view text);

    bool empty() const noexcept;
    const std::vector<SchemaRule>& rules() const noexcept;

    // The rule of `key`, or nullptr.
    const SchemaRule* rule_for(Namespace ns, std::string_view key) const noexcept;

    // Nothing if `value` satisfies the rule of `key` (or it has none).
    std::optional<Violation> validate(Namespace ns, std::string_view key,
                                      const nlohmann::json& value) const noexcept;
    // The same for JSON text, parsed within the agent's limits (a value that is not JSON
    // is a violation with rule "json").
    std::optional<Violation> validate_text(Namespace ns, std::string_view key,
                                           std::string_view text) const noexcept;

  private:
    struct Impl;
    explicit ValueSchemas(std::shared_ptr<const Impl> impl) noexcept;
    std::shared_ptr<const Impl> impl_;
};

// The mirror document of `rules`, sorted by namespace and pattern.
std::string encode_value_schemas(std::vector<SchemaRule> rules);
// The rules of a mirror document, checked for shape but not compiled.
Decoded<std::vector<SchemaRule>> decode_value_schemas(std::string_view text);

// Why `schema` (JSON text) cannot be a rule's schema, or nothing.
std::optional<std::string> check_schema(std::string_view schema);

// Why `pattern` cannot be a key pattern (empty, too long, control characters), or nothing.
std::optional<std::string> check_key_pattern(std::string_view pattern);
bool key_pattern_matches(std::string_view pattern, std::string_view key) noexcept;

// One rule per property of a pydantic model's JSON Schema (`model_json_schema()` in
// pydantic 2, `schema()` in pydantic 1), keyed by the property's name: references to
// `$defs` / `definitions` are inlined, and a recursive model keeps the definitions it
// needs inside the property's schema. Descriptions and titles stay (they document).
Decoded<std::vector<SchemaRule>> rules_from_model_schema(std::string_view text,
                                                         Namespace ns = Namespace::config);

// A rules file as the agent's --value-schema and `value-schema import` take it: a mirror
// document, or a pydantic model's schema.
Decoded<std::vector<SchemaRule>> rules_from_file_text(std::string_view text);

}  // namespace yuxi::config
