// Compiling and applying the rules of value_schema.hpp with Valijson.
//
// The only file that includes Valijson: its headers need VALIJSON_USE_EXCEPTIONS, without
// which an error aborts the process, and one translation unit keeps that definition in one
// place.
#define VALIJSON_USE_EXCEPTIONS 1  // NOLINT: Valijson reads it as a macro
#include "core/value_schema.hpp"

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include <algorithm>
#include <atomic>
#include <regex>
#include <unordered_map>
#include <utility>

#include "core/json_document.hpp"
#include "core/text.hpp"
#include "core/value_schema_checks.hpp"

namespace yuxi::config {
namespace {

using nlohmann::json;

std::atomic<std::uint64_t> g_generation{0};

// One Valijson validator per thread: it caches compiled regular expressions, so it must
// not be shared, and building one per call would recompile every pattern. The cache is
// dropped whenever the thread validates with another rule set, so it never grows beyond
// the patterns of one set.
valijson::Validator& thread_validator(std::uint64_t generation) {
    thread_local std::uint64_t cached_for = 0;
    thread_local std::optional<valijson::Validator> validator;
    if (!validator || cached_for != generation) {
        validator.emplace(valijson::Validator::kStrongTypes);
        cached_for = generation;
    }
    return *validator;
}

std::string escape_token(std::string_view token) {
    std::string out;
    for (const char c : token) {
        if (c == '~') {
            out += "~0";
        } else if (c == '/') {
            out += "~1";
        } else {
            out += c;
        }
    }
    return out;
}

// Valijson's context ("<root>", "[models]", "[0]") as a JSON pointer.
std::string pointer_of(const std::vector<std::string>& context) {
    std::string out;
    for (const std::string& c : context) {
        if (c.size() >= 2 && c.front() == '[' && c.back() == ']') {
            out += '/';
            out += escape_token(std::string_view(c).substr(1, c.size() - 2));
        }
    }
    return out;
}

// The text between the last pair of single quotes of `s`, if any.
std::optional<std::string> quoted_name(const std::string& s) {
    const auto end = s.rfind('\'');
    if (end == std::string::npos || end == 0) {
        return std::nullopt;
    }
    const auto start = s.rfind('\'', end - 1);
    if (start == std::string::npos) {
        return std::nullopt;
    }
    return s.substr(start + 1, end - start - 1);
}

struct RuleWords {
    std::string_view prefix;  // of Valijson's description
    std::string_view rule;
};

// Valijson's descriptions (validation_visitor.hpp) to the keyword that failed.
constexpr RuleWords kRules[] = {
    {"Missing required property", "required"},
    {"Value type not permitted", "type"},
    {"Failed to match against any enum", "enum"},
    {"Failed to match expected value set by 'const'", "const"},
    {"Expected number less than or equal", "maximum"},
    {"Expected number less than", "exclusiveMaximum"},
    {"Expected number greater than or equal", "minimum"},
    {"Expected number greater than", "exclusiveMinimum"},
    {"String should be no more than", "maxLength"},
    {"String should be no fewer than", "minLength"},
    {"Array should contain no more than", "maxItems"},
    {"Array should contain no fewer than", "minItems"},
    {"Array contains more items than allowed", "items"},
    {"Object should have no more than", "maxProperties"},
    {"Object should have no fewer than", "minProperties"},
    {"Failed to match regex specified by 'pattern'", "pattern"},
    {"Object contains a property that could not be validated", "additionalProperties"},
    {"Value should be a multiple of", "multipleOf"},
    {"Elements at indexes", "uniqueItems"},
    {"Missing dependency", "dependencies"},
    {"Failed to validate against any schemas allowed by anyOf", "anyOf"},
    {"Failed to validate against exactly one child schema", "oneOf"},
    {"Failed to validate against child schema", "allOf"},
    {"Failed to validate against a conditional schema", "if"},
    {"Failed to any values against subschema in 'contains'", "contains"},
    {"String should be a valid", "format"},
    {"Target value and comparison value are not equal", "const"},
};

std::string detail_of(std::string description) {
    while (!description.empty() && description.back() == '.') {
        description.pop_back();
    }
    if (!description.empty() && description[0] >= 'A' && description[0] <= 'Z') {
        description[0] = static_cast<char>(description[0] - 'A' + 'a');
    }
    return description;
}

Violation describe(const valijson::ValidationResults& results, const json& value,
                   const std::string& pattern) {
    std::vector<valijson::ValidationResults::Error> errors(results.begin(), results.end());
    if (errors.empty()) {
        return {"", "schema", "the value does not match its schema", pattern};
    }
    // The first error is the deepest (children report before their parents); an anyOf or
    // oneOf that failed on the same value says more than its first branch's complaint.
    const valijson::ValidationResults::Error* chosen = &errors.front();
    for (const auto& e : errors) {
        if (e.context == chosen->context && (e.description.starts_with("Failed to validate "
                                                                       "against any schemas") ||
                                             e.description.starts_with("Failed to validate "
                                                                       "against exactly one"))) {
            chosen = &e;
            break;
        }
    }
    Violation v{pointer_of(chosen->context), "schema", detail_of(chosen->description), pattern};
    for (const RuleWords& r : kRules) {
        if (chosen->description.starts_with(r.prefix)) {
            v.rule = std::string(r.rule);
            break;
        }
    }
    if (v.rule == "required" || v.rule == "additionalProperties") {
        if (const auto name = quoted_name(chosen->description)) {
            v.pointer += "/" + escape_token(*name);
        }
    } else if (v.rule == "type") {
        try {
            const json& at = value.at(json::json_pointer(v.pointer));
            v.detail = std::string(json_type_name(at)) + " is not allowed here";
        } catch (const std::exception&) {
            // The pointer came from the validator; keep its words.
        }
    }
    return v;
}

}  // namespace

struct ValueSchemas::Impl {
    struct Compiled {
        SchemaRule rule;
        std::size_t literal = 0;  // characters that are not '*'
        SchemaTraits traits;
        std::unique_ptr<valijson::Schema> schema;
    };
    std::vector<SchemaRule> rules;
    std::vector<Compiled> compiled;
    std::unordered_map<std::string, std::size_t> exact;  // namespace byte + key → compiled
    std::vector<std::size_t> globs;
    std::uint64_t generation = 0;

    const Compiled* find(Namespace ns, std::string_view key) const noexcept {
        std::string id(1, static_cast<char>(ns));
        id += key;
        if (const auto it = exact.find(id); it != exact.end()) {
            return &compiled[it->second];
        }
        const Compiled* best = nullptr;
        for (const std::size_t i : globs) {
            const Compiled& c = compiled[i];
            if (c.rule.ns != ns || !key_pattern_matches(c.rule.pattern, key)) {
                continue;
            }
            if (best == nullptr || c.literal > best->literal ||
                (c.literal == best->literal && c.rule.pattern < best->rule.pattern)) {
                best = &c;
            }
        }
        return best;
    }
};

ValueSchemas::ValueSchemas() : impl_(std::make_shared<const Impl>()) {}
ValueSchemas::ValueSchemas(std::shared_ptr<const Impl> impl) noexcept : impl_(std::move(impl)) {}
ValueSchemas::~ValueSchemas() = default;
ValueSchemas::ValueSchemas(const ValueSchemas&) = default;
ValueSchemas& ValueSchemas::operator=(const ValueSchemas&) = default;
ValueSchemas::ValueSchemas(ValueSchemas&&) noexcept = default;
ValueSchemas& ValueSchemas::operator=(ValueSchemas&&) noexcept = default;

bool ValueSchemas::empty() const noexcept {
    return impl_->rules.empty();
}

const std::vector<SchemaRule>& ValueSchemas::rules() const noexcept {
    return impl_->rules;
}

namespace {

Decoded<std::unique_ptr<valijson::Schema>> compile_one(const json& doc) {
    try {
        auto schema = std::make_unique<valijson::Schema>();
        valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
        const valijson::adapters::NlohmannJsonAdapter adapter(doc);
        parser.populateSchema(adapter, *schema);
        return schema;
    } catch (const std::exception& e) {
        return refuse(std::string("the validator cannot use it: ") + e.what());
    }
}

}  // namespace

Decoded<ValueSchemas> ValueSchemas::compile(std::vector<SchemaRule> rules) {
    if (rules.size() > kMaxSchemaRules) {
        return refuse("more than " + std::to_string(kMaxSchemaRules) + " value schemas");
    }
    auto impl = std::make_shared<Impl>();
    impl->generation = ++g_generation;
    std::sort(rules.begin(), rules.end(), [](const SchemaRule& a, const SchemaRule& b) {
        return std::pair(a.ns, a.pattern) < std::pair(b.ns, b.pattern);
    });
    for (const SchemaRule& r : rules) {
        const std::string where = std::string(r.ns == Namespace::config ? "config" : "metadata") +
                                  " pattern '" + printable(r.pattern) + "'";
        if (const auto why = check_key_pattern(r.pattern)) {
            return refuse(where + ": " + *why);
        }
        auto doc = parse_json(r.schema, {kMaxSchemaBytes, kMaxSchemaDepth});
        if (!doc) {
            return refuse(where + ": the schema is " + doc.reason());
        }
        auto traits = inspect_schema(*doc);
        if (!traits) {
            return refuse(where + ": " + traits.reason());
        }
        auto schema = compile_one(*doc);
        if (!schema) {
            return refuse(where + ": " + schema.reason());
        }
        Impl::Compiled c;
        c.rule = {r.ns, r.pattern, doc->dump()};
        c.literal = static_cast<std::size_t>(
            std::count_if(r.pattern.begin(), r.pattern.end(), [](char ch) { return ch != '*'; }));
        c.traits = *traits;
        c.schema = std::move(*schema);
        const std::size_t index = impl->compiled.size();
        std::string id(1, static_cast<char>(r.ns));
        id += r.pattern;
        if (r.pattern.find('*') == std::string::npos) {
            if (!impl->exact.emplace(std::move(id), index).second) {
                return refuse(where + ": given twice");
            }
        } else {
            impl->globs.push_back(index);
        }
        impl->rules.push_back(c.rule);
        impl->compiled.push_back(std::move(c));
    }
    return ValueSchemas(std::shared_ptr<const Impl>(std::move(impl)));
}

Decoded<ValueSchemas> ValueSchemas::from_document(std::string_view text) {
    auto rules = decode_value_schemas(text);
    if (!rules) {
        return refuse(rules.reason());
    }
    return compile(std::move(*rules));
}

const SchemaRule* ValueSchemas::rule_for(Namespace ns, std::string_view key) const noexcept {
    const Impl::Compiled* c = impl_->find(ns, key);
    return c != nullptr ? &c->rule : nullptr;
}

std::optional<Violation> ValueSchemas::validate(Namespace ns, std::string_view key,
                                                const json& value) const noexcept {
    if (ns == Namespace::metadata && key == kValueSchemasKey) {
        return std::nullopt;  // the rules themselves: checked by compiling them
    }
    const Impl::Compiled* c = impl_->find(ns, key);
    if (c == nullptr) {
        return std::nullopt;
    }
    try {
        if (auto shape = check_value_shape(value, c->traits)) {
            shape->pattern = c->rule.pattern;
            return shape;
        }
        valijson::Validator& validator = thread_validator(impl_->generation);
        const valijson::adapters::NlohmannJsonAdapter adapter(value);
        if (validator.validate(*c->schema, adapter, nullptr)) {
            return std::nullopt;
        }
        valijson::ValidationResults results;
        (void)validator.validate(*c->schema, adapter, &results);
        return describe(results, value, c->rule.pattern);
    } catch (const std::exception& e) {
        return Violation{"", "schema", std::string("the validator failed: ") + e.what(),
                         c->rule.pattern};
    } catch (...) {
        return Violation{"", "schema", "the validator failed", c->rule.pattern};
    }
}

std::optional<Violation> ValueSchemas::validate_text(Namespace ns, std::string_view key,
                                                     std::string_view text) const noexcept {
    if (rule_for(ns, key) == nullptr) {
        return std::nullopt;
    }
    try {
        auto doc = parse_json(text, {text.size(), kMaxValueDepth});
        if (!doc) {
            return Violation{"", "json", doc.reason(), rule_for(ns, key)->pattern};
        }
        return validate(ns, key, *doc);
    } catch (...) {
        return Violation{"", "json", "cannot be parsed", rule_for(ns, key)->pattern};
    }
}

std::optional<std::string> check_schema(std::string_view schema) {
    auto compiled = ValueSchemas::compile({{Namespace::config, "schema", std::string(schema)}});
    if (!compiled) {
        // "config pattern 'schema': why" → "why"
        const std::string& why = compiled.reason();
        const auto colon = why.find(": ");
        return colon == std::string::npos ? why : why.substr(colon + 2);
    }
    return std::nullopt;
}

std::string Violation::message() const {
    std::string out = pointer.empty() ? std::string("(whole value)") : pointer;
    out += ": ";
    out += rule;
    if (!detail.empty()) {
        out += " (" + detail + ")";
    }
    return out;
}

}  // namespace yuxi::config
