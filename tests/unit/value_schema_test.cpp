// The value schemas' rule (core/value_schema.hpp): which rule a key gets, what a violation
// names, what a schema may not contain, the mirror document and the pydantic import.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "core/value_schema.hpp"

namespace yuxi::config {
namespace {

using nlohmann::json;

const char* kProvider = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "base_url": {"type": "string", "pattern": "^https?://"},
    "models": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    "custom": {"type": "boolean"}
  },
  "required": ["name", "base_url", "models"]
})";

ValueSchemas compile(std::vector<SchemaRule> rules) {
    auto s = ValueSchemas::compile(std::move(rules));
    EXPECT_TRUE(s) << s.reason();
    return s ? *s : ValueSchemas();
}

std::string reason_of(std::vector<SchemaRule> rules) {
    auto s = ValueSchemas::compile(std::move(rules));
    return s ? std::string() : s.reason();
}

TEST(ValueSchema, AViolationNamesThePointerAndTheRule) {
    const ValueSchemas s =
        compile({{Namespace::config, "embed_model", R"({"type":"string","minLength":1})"},
                 {Namespace::config, "model_names",
                  std::string(R"({"type":"object","additionalProperties":)") + kProvider + "}"}});
    EXPECT_FALSE(s.validate_text(Namespace::config, "embed_model", R"("bge-m3")"));
    auto v = s.validate_text(Namespace::config, "embed_model", "42");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->pointer, "");
    EXPECT_EQ(v->rule, "type");
    EXPECT_EQ(v->pattern, "embed_model");
    EXPECT_EQ(v->message(), "(whole value): type (an integer is not allowed here)");

    v = s.validate_text(Namespace::config, "model_names",
                        R"({"openai":{"name":"OpenAI","base_url":"https://x"}})");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->pointer, "/openai/models");
    EXPECT_EQ(v->rule, "required");
    EXPECT_TRUE(v->message().starts_with("/openai/models: required")) << v->message();

    v = s.validate_text(Namespace::config, "model_names",
                        R"({"a/b":{"name":"x","base_url":"ftp://x","models":["m"]}})");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->pointer, "/a~1b/base_url");
    EXPECT_EQ(v->rule, "pattern");

    v = s.validate_text(Namespace::config, "model_names",
                        R"({"o":{"name":"x","base_url":"http://x","models":[]}})");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->pointer, "/o/models");
    EXPECT_EQ(v->rule, "minItems");

    v = s.validate_text(Namespace::config, "embed_model", "{not json");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->rule, "json");
}

TEST(ValueSchema, AnExactPatternBeatsAGlobAndTheLongestGlobWins) {
    const ValueSchemas s = compile({{Namespace::config, "*", R"({"type":"string"})"},
                                    {Namespace::config, "enable_*", R"({"type":"boolean"})"},
                                    {Namespace::config, "enable_web*", R"({"type":"null"})"},
                                    {Namespace::config, "enable_reranker", R"({"const":true})"},
                                    {Namespace::metadata, "meta*", R"({"type":"object"})"}});
    EXPECT_EQ(s.rule_for(Namespace::config, "enable_reranker")->pattern, "enable_reranker");
    EXPECT_EQ(s.rule_for(Namespace::config, "enable_web_search")->pattern, "enable_web*");
    EXPECT_EQ(s.rule_for(Namespace::config, "enable_x")->pattern, "enable_*");
    EXPECT_EQ(s.rule_for(Namespace::config, "top_k")->pattern, "*");
    EXPECT_EQ(s.rule_for(Namespace::metadata, "global_metadata"), nullptr);
    EXPECT_EQ(s.rule_for(Namespace::metadata, "metadata_milvus")->pattern, "meta*");
    EXPECT_TRUE(s.validate_text(Namespace::config, "enable_reranker", "false"));
    EXPECT_FALSE(s.validate_text(Namespace::config, "enable_x", "false"));
    // The mirror document itself is never checked against a rule.
    const ValueSchemas all = compile({{Namespace::metadata, "*", R"({"type":"string"})"}});
    EXPECT_FALSE(all.validate_text(Namespace::metadata, kValueSchemasKey, "{}"));
    EXPECT_FALSE(ValueSchemas().validate_text(Namespace::config, "x", "1"));
}

TEST(ValueSchema, KeyPatterns) {
    EXPECT_TRUE(key_pattern_matches("a*b*c", "aXbYc"));
    EXPECT_TRUE(key_pattern_matches("a*b*c", "abbbc"));
    EXPECT_FALSE(key_pattern_matches("a*b*c", "abx"));
    EXPECT_TRUE(key_pattern_matches("**", ""));
    EXPECT_FALSE(key_pattern_matches("", "a"));
    EXPECT_TRUE(check_key_pattern(""));
    EXPECT_TRUE(check_key_pattern(std::string(256, 'a')));
    EXPECT_TRUE(check_key_pattern("a\nb"));
    EXPECT_FALSE(check_key_pattern("model_names"));
    EXPECT_NE(reason_of({{Namespace::config, "a", "{}"}, {Namespace::config, "a", "{}"}})
                  .find("given twice"),
              std::string::npos);
}

TEST(ValueSchema, SchemasThatCouldHurtTheValidatorAreRefused) {
    const auto refused = [](const char* schema, const char* why) {
        const auto r = check_schema(schema);
        ASSERT_TRUE(r) << schema;
        EXPECT_NE(r->find(why), std::string::npos) << *r;
    };
    refused(R"({"$ref":"#"})", "leads back to itself");
    refused(
        R"({"allOf":[{"$ref":"#/definitions/a"}],"definitions":{"a":{"anyOf":[{"$ref":"#"}]}}})",
        "leads back to itself");
    refused(R"({"$ref":"http://example.com/s.json"})", "not local");
    refused(R"({"$ref":"#/definitions/missing"})", "points to nothing");
    refused(R"({"pattern":"(unclosed"})", "regular expression");
    refused(R"({"properties":{"a":{"$id":"x","type":"string"}}})", "$id");
    refused(R"({"anyOf":[]})", "non-empty array");
    refused(R"([1,2])", "not an object");
    refused(R"({"type":)", "not JSON");
    // Descending into the value before coming back is fine: depth bounds it.
    EXPECT_FALSE(check_schema(R"({"properties":{"child":{"$ref":"#"}},"type":"object"})"));
    EXPECT_FALSE(check_schema("true"));
}

TEST(ValueSchema, ValuesTooLongForTheChecksAreRefused) {
    const ValueSchemas s = compile({{Namespace::config, "p", R"({"items":{"pattern":"^a*$"}})"},
                                    {Namespace::config, "u", R"({"uniqueItems":true})"}});
    const std::string ok = json::array({std::string(100, 'a')}).dump();
    EXPECT_FALSE(s.validate_text(Namespace::config, "p", ok));
    const std::string long_string =
        json::array({"a", std::string(kMaxPatternSubjectBytes + 1, 'a')}).dump();
    auto v = s.validate_text(Namespace::config, "p", long_string);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->pointer, "/1");
    EXPECT_EQ(v->rule, "pattern");
    json many = json::array();
    for (std::size_t i = 0; i <= kMaxUniqueItems; ++i) {
        many.push_back(i);
    }
    v = s.validate(Namespace::config, "u", many);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->rule, "uniqueItems");
    EXPECT_TRUE(s.validate_text(Namespace::config, "u", "[1,1]"));
}

TEST(ValueSchema, TheMirrorDocumentRoundTripsAndRefusesHostileShapes) {
    const std::vector<SchemaRule> rules = {
        {Namespace::metadata, "global_metadata", R"({"type":"object"})"},
        {Namespace::config, "top_k", R"({"maximum":100,"type":"integer"})"}};
    const std::string doc = encode_value_schemas(rules);
    auto back = decode_value_schemas(doc);
    ASSERT_TRUE(back) << back.reason();
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*back)[0].pattern, "top_k");  // sorted: config first
    auto compiled = ValueSchemas::from_document(doc);
    ASSERT_TRUE(compiled) << compiled.reason();
    EXPECT_TRUE(compiled->validate_text(Namespace::config, "top_k", "101"));
    for (const char* bad :
         {"", "[]", R"({"v":2,"schemas":[]})", R"({"v":1,"schemas":{}})",
          R"({"v":1,"schemas":[{"namespace":"other","pattern":"a","schema":{}}]})",
          R"({"v":1,"schemas":[{"namespace":"config","pattern":"","schema":{}}]})",
          R"({"v":1,"schemas":[{"namespace":"config","pattern":"a","schema":3}]})",
          R"({"v":1,"schemas":[{"namespace":"config","pattern":"a","schema":{"$ref":"#"}}]})"}) {
        EXPECT_FALSE(ValueSchemas::from_document(bad)) << bad;
    }
}

TEST(ValueSchema, APydanticSchemaBecomesOneRulePerProperty) {
    // The shape pydantic 2's model_json_schema() gives: $defs and references.
    const char* model = R"({
      "title": "Config", "type": "object",
      "$defs": {
        "Provider": {"type": "object", "title": "Provider",
                     "properties": {"name": {"type": "string"},
                                    "models": {"type": "array", "items": {"type": "string"}}},
                     "required": ["name", "models"]},
        "Node": {"type": "object", "properties": {"children": {"type": "array",
                 "items": {"$ref": "#/$defs/Node"}}}}
      },
      "properties": {
        "embed_model": {"type": "string", "default": "bge-m3", "description": "Embedding"},
        "model_names": {"type": "object", "additionalProperties": {"$ref": "#/$defs/Provider"}},
        "tree": {"$ref": "#/$defs/Node", "description": "recursive"}
      }
    })";
    auto rules = rules_from_model_schema(model);
    ASSERT_TRUE(rules) << rules.reason();
    ASSERT_EQ(rules->size(), 3u);
    const auto compiled = compile(*rules);
    EXPECT_EQ(json::parse((*rules)[1].schema)["additionalProperties"]["required"],
              json::array({"name", "models"}));
    auto v = compiled.validate_text(Namespace::config, "model_names", R"({"x":{"name":"X"}})");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->message().substr(0, 20), "/x/models: required ");
    EXPECT_TRUE(json::parse((*rules)[2].schema).contains("definitions"));
    EXPECT_FALSE(compiled.validate_text(Namespace::config, "tree", R"({"children":[{}]})"));
    EXPECT_TRUE(
        compiled.validate_text(Namespace::config, "tree", R"({"children":[{"children":1}]})"));
    // pydantic 1's schema(): "definitions".
    const char* v1 = R"({"properties":{"p":{"$ref":"#/definitions/P"}},
                         "definitions":{"P":{"type":"integer"}}})";
    rules = rules_from_model_schema(v1);
    ASSERT_TRUE(rules) << rules.reason();
    EXPECT_EQ(json::parse((*rules)[0].schema), json::parse(R"({"type":"integer"})"));
    EXPECT_FALSE(rules_from_model_schema(R"({"properties":{"p":{"$ref":"#/$defs/Missing"}}})"));
    EXPECT_FALSE(rules_from_model_schema(R"({"type":"object"})"));
    EXPECT_TRUE(rules_from_file_text(encode_value_schemas(*rules)));
    EXPECT_FALSE(rules_from_file_text("[1]"));
}

TEST(ValueSchema, ManyThreadsValidateAtOnce) {
    const ValueSchemas s = compile(
        {{Namespace::config, "m", std::string(R"({"additionalProperties":)") + kProvider + "}"}});
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 500; ++i) {
                const bool good = i % 2 == 0;
                const auto v = s.validate_text(
                    Namespace::config, "m",
                    good ? R"({"a":{"name":"a","base_url":"http://a","models":["x"]}})"
                         : R"({"a":{"name":"a","base_url":"gopher://a","models":["x"]}})");
                if (v.has_value() == good) {
                    ++wrong;
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace yuxi::config
