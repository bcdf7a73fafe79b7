// The rules of value_schema.hpp as documents: key patterns, the mirror document that
// carries them to the agents, and the import of a pydantic model's JSON Schema.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "core/json_document.hpp"
#include "core/text.hpp"
#include "core/value_schema.hpp"

namespace yuxi::config {
namespace {

using nlohmann::json;

std::string_view ns_name(Namespace ns) {
    return ns == Namespace::config ? "config" : "metadata";
}

// Inlines a pydantic schema's references to its definitions. A model that refers to itself
// cannot be inlined: `recursive` is then set and the caller keeps the definitions instead.
// Depth and size are bounded, so a chain of definitions or one used many times over cannot
// make the output (or this recursion) grow without end.
class Inliner {
  public:
    explicit Inliner(const json& defs) : defs_(defs) {}

    std::optional<json> inline_refs(const json& node, std::size_t depth) {
        if (++nodes_ > kMaxNodes || depth > kMaxSchemaDepth) {
            error_ = "the schema is too large or too deep once its definitions are inlined";
            return std::nullopt;
        }
        if (node.is_array()) {
            json out = json::array();
            for (const json& e : node) {
                auto v = inline_refs(e, depth + 1);
                if (!v) {
                    return std::nullopt;
                }
                out.push_back(std::move(*v));
            }
            return out;
        }
        if (!node.is_object()) {
            return node;
        }
        json out = json::object();
        if (const auto ref = node.find("$ref"); ref != node.end() && ref->is_string()) {
            const std::string name = def_name(ref->get<std::string>());
            if (name.empty() || !defs_.is_object() || !defs_.contains(name)) {
                error_ = "the reference \"" + printable(ref->get<std::string>(), 64) +
                         "\" is not to one of the model's definitions";
                return std::nullopt;
            }
            if (std::find(stack_.begin(), stack_.end(), name) != stack_.end()) {
                recursive_ = true;
                return node;
            }
            stack_.push_back(name);
            auto def = inline_refs(defs_[name], depth + 1);
            stack_.pop_back();
            if (!def) {
                return std::nullopt;
            }
            out = std::move(*def);
        }
        for (const auto& [k, v] : node.items()) {
            if (k == "$ref") {
                continue;
            }
            auto sub = inline_refs(v, depth + 1);
            if (!sub) {
                return std::nullopt;
            }
            out[k] = std::move(*sub);  // beside a $ref: a description, a default
        }
        return out;
    }

    bool recursive() const noexcept { return recursive_; }
    const std::string& error() const noexcept { return error_; }

    // "#/$defs/Provider" or "#/definitions/Provider" → "Provider"; anything else → "".
    static std::string def_name(const std::string& ref) {
        for (const std::string_view prefix : {"#/$defs/", "#/definitions/"}) {
            if (ref.starts_with(prefix) && ref.find('/', prefix.size()) == std::string::npos) {
                return ref.substr(prefix.size());
            }
        }
        return {};
    }

  private:
    static constexpr std::size_t kMaxNodes = 200000;
    const json& defs_;
    std::vector<std::string> stack_;
    std::size_t nodes_ = 0;
    bool recursive_ = false;
    std::string error_;
};

// References rewritten to "#/definitions/NAME"; the names met are added to `needed`.
// Recursion as deep as the document (bounded by parse_json's limit).
json rewrite_refs(const json& node, std::set<std::string>& needed) {
    if (node.is_array()) {
        json out = json::array();
        for (const json& e : node) {
            out.push_back(rewrite_refs(e, needed));
        }
        return out;
    }
    if (!node.is_object()) {
        return node;
    }
    json out = json::object();
    for (const auto& [k, v] : node.items()) {
        if (k == "$ref" && v.is_string()) {
            const std::string name = Inliner::def_name(v.get<std::string>());
            if (!name.empty()) {
                needed.insert(name);
            }
            out[k] = name.empty() ? v : json("#/definitions/" + name);
        } else {
            out[k] = rewrite_refs(v, needed);
        }
    }
    return out;
}

// For a recursive model: the property's schema with every reference rewritten to
// "#/definitions/NAME" and the definitions it reaches copied beside it.
json with_definitions(const json& property, const json& defs) {
    std::set<std::string> needed;
    json out = rewrite_refs(property, needed);
    json definitions = json::object();
    std::set<std::string> done;
    // Rewriting a definition may name more: loop until no new name appears.
    for (bool grew = true; grew;) {
        grew = false;
        for (const std::string& name : std::set<std::string>(needed)) {
            if (done.insert(name).second && defs.contains(name)) {
                definitions[name] = rewrite_refs(defs[name], needed);
                grew = true;
            }
        }
    }
    out["definitions"] = std::move(definitions);
    return out;
}

}  // namespace

std::optional<std::string> check_key_pattern(std::string_view pattern) {
    if (pattern.empty() || pattern.size() > kMaxKeyPatternBytes) {
        return "a key pattern is 1 to " + std::to_string(kMaxKeyPatternBytes) + " bytes";
    }
    for (const char c : pattern) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return std::string("a key pattern holds a control character");
        }
    }
    return std::nullopt;
}

bool key_pattern_matches(std::string_view pattern, std::string_view key) noexcept {
    // Greedy with one backtrack point (the last '*'): linear in practice, and at most
    // pattern × key steps, both bounded.
    std::size_t p = 0;
    std::size_t k = 0;
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (k < key.size()) {
        if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = k;
        } else if (p < pattern.size() && pattern[p] == key[k]) {
            ++p;
            ++k;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            k = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') {
        ++p;
    }
    return p == pattern.size();
}

std::string encode_value_schemas(std::vector<SchemaRule> rules) {
    std::sort(rules.begin(), rules.end(), [](const SchemaRule& a, const SchemaRule& b) {
        return std::pair(a.ns, a.pattern) < std::pair(b.ns, b.pattern);
    });
    json list = json::array();
    for (const SchemaRule& r : rules) {
        list.push_back({{"namespace", ns_name(r.ns)},
                        {"pattern", r.pattern},
                        {"schema", json::parse(r.schema, nullptr, false)}});
    }
    return json{{"v", 1}, {"schemas", std::move(list)}}.dump(-1, ' ', false,
                                                             json::error_handler_t::replace);
}

Decoded<std::vector<SchemaRule>> decode_value_schemas(std::string_view text) {
    auto doc = parse_json(text, {kMaxSchemaDocumentBytes, kMaxSchemaDepth + 3});
    if (!doc) {
        return refuse("value schemas: " + doc.reason());
    }
    Fields f(*doc, "value schemas");
    (void)f.u64("v", 1, 1);
    const json* list = f.array("schemas", kMaxSchemaRules);
    if (!f.ok()) {
        return refuse(f.error());
    }
    std::vector<SchemaRule> out;
    out.reserve(list->size());
    for (std::size_t i = 0; i < list->size(); ++i) {
        const json& e = (*list)[i];
        Fields r(e, "value schema " + std::to_string(i));
        const auto ns = r.one_of("namespace", {"config", "metadata"});
        const auto pattern = r.text("pattern", kMaxKeyPatternBytes);
        if (r.ok() &&
            (!e.contains("schema") || !(e["schema"].is_object() || e["schema"].is_boolean()))) {
            r.fail("schema", "is not a JSON Schema (an object or a boolean)");
        }
        if (!r.ok()) {
            return refuse(r.error());
        }
        out.push_back({*ns == "config" ? Namespace::config : Namespace::metadata,
                       std::string(*pattern),
                       e["schema"].dump(-1, ' ', false, json::error_handler_t::replace)});
    }
    return out;
}

Decoded<std::vector<SchemaRule>> rules_from_model_schema(std::string_view text, Namespace ns) {
    auto doc = parse_json(text, {kMaxSchemaDocumentBytes, kMaxSchemaDepth});
    if (!doc) {
        return refuse("the model schema is " + doc.reason());
    }
    Fields f(*doc, "the model schema");
    const json* properties = f.object("properties");
    if (!f.ok()) {
        return refuse(f.error() + " (expected a pydantic model_json_schema() document)");
    }
    static const json kNoDefs = json::object();
    const json& defs = doc->contains("$defs")         ? (*doc)["$defs"]
                       : doc->contains("definitions") ? (*doc)["definitions"]
                                                      : kNoDefs;
    std::vector<SchemaRule> out;
    for (const auto& [name, property] : properties->items()) {
        if (const auto why = check_key_pattern(name)) {
            return refuse("property '" + printable(name) + "': " + *why);
        }
        Inliner inliner(defs);
        auto inlined = inliner.inline_refs(property, 0);
        if (!inlined) {
            return refuse("property '" + printable(name) + "': " + inliner.error());
        }
        const json schema = inliner.recursive() ? with_definitions(property, defs) : *inlined;
        out.push_back({ns, name, schema.dump(-1, ' ', false, json::error_handler_t::replace)});
    }
    return out;
}

Decoded<std::vector<SchemaRule>> rules_from_file_text(std::string_view text) {
    auto doc = parse_json(text, {kMaxSchemaDocumentBytes, kMaxSchemaDepth + 3});
    if (!doc) {
        return refuse("the value schema file is " + doc.reason());
    }
    if (doc->is_object() && doc->contains("schemas") && doc->contains("v")) {
        return decode_value_schemas(text);
    }
    if (doc->is_object() && doc->contains("properties")) {
        return rules_from_model_schema(text);
    }
    return refuse(
        "the value schema file is neither a value-schemas document ({\"v\":1,\"schemas\":[...]}) "
        "nor a pydantic model's JSON Schema (with \"properties\")");
}

}  // namespace yuxi::config
