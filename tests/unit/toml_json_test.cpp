// TOML → JSON conversion: every TOML type, nested tables and arrays of tables, dates and
// times, nan/inf rejection naming the key, syntax errors with line and column, the merge
// of several config files, and the Yuxi-Know samples.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "agent/file/file_source.hpp"
#include "core/toml_json.hpp"

namespace yuxi::config::agent {
namespace {

using nlohmann::json;

std::string read_sample(const std::string& rel) {
    std::ifstream in(std::string(YUXI_SAMPLES_DIR) + "/" + rel, std::ios::binary);
    EXPECT_TRUE(in) << rel;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// The document, failing the test if it is refused.
json toml_of(std::string_view text, std::string_view source) {
    auto d = parse_toml_document(text, source);
    EXPECT_TRUE(d) << d.reason().message;
    return d ? *d : json();
}

json json_of(std::string_view text, std::string_view source) {
    auto d = parse_json_document(text, source);
    EXPECT_TRUE(d) << d.reason().message;
    return d ? *d : json();
}

std::string error_of(std::string_view toml) {
    return parse_toml_document(toml, "base.toml").reason().message;
}

TEST(TomlJsonTest, ScalarsMapToJsonScalars) {
    const json j = toml_of(R"(
s = "text ✓ \"quoted\""
lit = 'C:\path'
multi = """
two
lines"""
i = 42
neg = -17
big = 9223372036854775807
small = -9223372036854775808
hex = 0xff
f = 3.5
exp = 1e300
negzero = -0.0
t = true
no = false
)",
                           "t.toml");
    EXPECT_EQ(j.dump(),
              R"({"big":9223372036854775807,"exp":1e+300,"f":3.5,"hex":255,"i":42,)"
              R"("lit":"C:\\path","multi":"two\nlines","neg":-17,"negzero":-0.0,"no":false,)"
              R"("s":"text ✓ \"quoted\"","small":-9223372036854775808,"t":true})");
    EXPECT_TRUE(j["i"].is_number_integer());
    EXPECT_TRUE(j["f"].is_number_float());
}

TEST(TomlJsonTest, TablesArraysAndArraysOfTables) {
    const json j = toml_of(R"(
top = 1
mixed = [1, "two", [3, 4], { five = 5 }]
empty_array = []
inline = { a = 1, b = { c = "d" } }
"quoted key" = 1

[model_names.openai]
name = "OpenAI"
models = ["gpt-4", "gpt-4o"]

[model_names."local.vllm"]
custom = true

[[servers]]
host = "a"

[[servers]]
host = "b"
ports = [1, 2]

[[servers.tags]]
k = "v"

[empty]
)",
                           "t.toml");
    EXPECT_EQ(j["mixed"].dump(), R"([1,"two",[3,4],{"five":5}])");
    EXPECT_EQ(j["empty_array"].dump(), "[]");
    EXPECT_EQ(j["inline"].dump(), R"({"a":1,"b":{"c":"d"}})");
    EXPECT_EQ(j["quoted key"], 1);
    EXPECT_EQ(j["model_names"].dump(),
              R"({"local.vllm":{"custom":true},"openai":{"models":["gpt-4","gpt-4o"],)"
              R"("name":"OpenAI"}})");
    EXPECT_EQ(j["servers"].dump(),
              R"([{"host":"a"},{"host":"b","ports":[1,2],"tags":[{"k":"v"}]}])");
    EXPECT_EQ(j["empty"].dump(), "{}");
}

TEST(TomlJsonTest, DatesAndTimesBecomeRfc3339Strings) {
    const json j = toml_of(R"(
odt = 1979-05-27T07:32:00Z
odt_offset = 1979-05-27T00:32:00-07:00
odt_plus = 1979-05-27T00:32:00+05:30
odt_frac = 1979-05-27T00:32:00.999999-07:00
odt_space = 1979-05-27 07:32:00Z
ldt = 1979-05-27T07:32:00
ldt_frac = 1979-05-27T00:32:00.5
ld = 1979-05-27
lt = 07:32:00
lt_frac = 00:32:00.123456789
lt_ms = 00:32:00.100
early = 0001-01-02
)",
                           "t.toml");
    EXPECT_EQ(j["odt"], "1979-05-27T07:32:00Z");
    EXPECT_EQ(j["odt_offset"], "1979-05-27T00:32:00-07:00");
    EXPECT_EQ(j["odt_plus"], "1979-05-27T00:32:00+05:30");
    EXPECT_EQ(j["odt_frac"], "1979-05-27T00:32:00.999999-07:00");
    EXPECT_EQ(j["odt_space"], "1979-05-27T07:32:00Z");
    EXPECT_EQ(j["ldt"], "1979-05-27T07:32:00");
    EXPECT_EQ(j["ldt_frac"], "1979-05-27T00:32:00.5");
    EXPECT_EQ(j["ld"], "1979-05-27");
    EXPECT_EQ(j["lt"], "07:32:00");
    EXPECT_EQ(j["lt_frac"], "00:32:00.123456789");
    EXPECT_EQ(j["lt_ms"], "00:32:00.1");
    EXPECT_EQ(j["early"], "0001-01-02");
}

TEST(TomlJsonTest, NanAndInfAreRejectedNamingTheKey) {
    EXPECT_EQ(error_of("[x]\ny = inf\n"),
              "base.toml: key 'x.y' holds inf, which JSON cannot represent");
    EXPECT_EQ(error_of("a = -inf\n"), "base.toml: key 'a' holds -inf, which JSON cannot represent");
    EXPECT_EQ(error_of("a = nan\n"), "base.toml: key 'a' holds nan, which JSON cannot represent");
    EXPECT_EQ(error_of("a = { b = [1.0, { c = +nan }] }\n"),
              "base.toml: key 'a.b[1].c' holds nan, which JSON cannot represent");
    EXPECT_EQ(error_of("[\"dotted.key\"]\n\"odd key\" = inf\n"),
              "base.toml: key '\"dotted.key\".\"odd key\"' holds inf, which JSON cannot represent");
    EXPECT_EQ(parse_toml_document("a = inf", "base.toml").reason().kind,
              DocumentProblem::Kind::unsupported);
}

TEST(TomlJsonTest, SyntaxErrorsGiveLineAndColumn) {
    const std::string e = error_of("a = 1\nb = \"ok\"\nc = = 3\n");
    EXPECT_EQ(e.rfind("base.toml:3:", 0), 0u) << e;
    const std::string dup = error_of("a = 1\na = 2\n");
    EXPECT_EQ(dup.rfind("base.toml:2:", 0), 0u) << dup;
    const std::string utf8 = error_of("a = \"ok\"\nb = \"\xff\xfe\"\n");
    EXPECT_EQ(utf8.rfind("base.toml:2:", 0), 0u) << utf8;
    const auto refused = parse_toml_document("a = ", "base.toml");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.reason().kind, DocumentProblem::Kind::syntax);
}

TEST(TomlJsonTest, JsonErrorsGiveLineAndColumnAndNeverQuoteTheDocument) {
    const auto error = [](std::string_view text) {
        const auto d = parse_json_document(text, "meta.json");
        EXPECT_FALSE(d);
        EXPECT_EQ(d.reason().kind, DocumentProblem::Kind::syntax);
        return d.reason().message;
    };
    const std::string e = error("{\n  \"a\": 1,\n  \"b\": secretvalue\n}");
    EXPECT_EQ(e.rfind("meta.json:3:", 0), 0u) << e;
    EXPECT_EQ(e.find("secret"), std::string::npos) << e;
    const std::string bad_utf8 = error("{\"a\": \"sec\xff\"}");
    EXPECT_EQ(bad_utf8.rfind("meta.json:1:", 0), 0u) << bad_utf8;
    EXPECT_EQ(bad_utf8.find("sec"), std::string::npos) << bad_utf8;
    EXPECT_NE(error("").find("meta.json:1:1:"), std::string::npos);
    EXPECT_EQ(json_of(" {\"b\":[1, 2.5, null],\"a\":{}} ", "m").dump(),
              R"({"a":{},"b":[1,2.5,null]})");
}

TEST(TomlJsonTest, MergeOverridesKeyByKeyAndMergesTables) {
    json base = json::parse(R"({"a":1,"t":{"x":1,"y":{"p":1,"q":2}},"arr":[1,2,3],"o":{"k":1}})");
    const json overlay =
        json::parse(R"({"b":2,"t":{"y":{"q":3,"r":4},"z":5},"arr":[9],"o":7,"a":{"now":"obj"}})");
    merge_json(base, overlay);
    EXPECT_EQ(base.dump(), R"({"a":{"now":"obj"},"arr":[9],"b":2,"o":7,)"
                           R"("t":{"x":1,"y":{"p":1,"q":3,"r":4},"z":5}})");
}

TEST(TomlJsonTest, PlanDiffsAndRefusesOversizedValues) {
    const EntryMap published = {{{Namespace::config, "same"}, "1"},
                                {{Namespace::config, "changed"}, "1"},
                                {{Namespace::config, "removed"}, "1"},
                                {{Namespace::metadata, "big"}, "\"small\""}};
    const EntryMap wanted = {{{Namespace::config, "same"}, "1"},
                             {{Namespace::config, "changed"}, "2"},
                             {{Namespace::config, "added"}, "3"},
                             {{Namespace::config, "new_big"}, std::string(20, 'x')},
                             {{Namespace::metadata, "big"}, std::string(20, 'x')},
                             {{Namespace::config, ""}, "1"}};
    const Plan plan = plan_changes(published, wanted, 10);
    std::vector<std::string> got;
    for (const Change& c : plan.changes) {
        got.push_back(c.key + (c.value ? "=" + *c.value : " deleted"));
        EXPECT_EQ(c.category, "");
    }
    EXPECT_EQ(got, (std::vector<std::string>{"added=3", "changed=2", "removed deleted"}));
    ASSERT_EQ(plan.refused.size(), 3u);  // "", new_big, big (kept as published)
    EXPECT_TRUE(plan_changes(published, published, 10).changes.empty());
}

TEST(TomlJsonTest, SampleFilesConvert) {
    const json base = toml_of(read_sample("saves/config/base.toml"), "base.toml");
    EXPECT_EQ(base.size(), 13u);  // 12 plain fields and model_names
    EXPECT_EQ(base["embed_model"], "siliconflow/BAAI/bge-m3");
    EXPECT_EQ(base["enable_reranker"], true);
    EXPECT_EQ(base["model_names"]["openai"].dump(),
              R"({"base_url":"https://api.openai.com/v1","custom":false,)"
              R"("default":"gpt-4o-mini","env":"OPENAI_API_KEY",)"
              R"("models":["gpt-4","gpt-4o","gpt-4o-mini"],"name":"OpenAI",)"
              R"("url":"https://platform.openai.com/docs/models"})");
    EXPECT_EQ(base["model_names"]["zhipu"]["name"], "智谱AI (Zhipu)");

    json merged = base;
    merge_json(merged, toml_of(read_sample("saves/config/custom_providers.toml"), "custom.toml"));
    EXPECT_EQ(merged["model_names"].size(), base["model_names"].size() + 2);
    EXPECT_EQ(merged["model_names"]["local-vllm"]["custom"], true);
    EXPECT_EQ(merged["model_names"]["openai"], base["model_names"]["openai"]);

    for (const char* f : {"saves/knowledge_base_data/global_metadata.json",
                          "saves/knowledge_base_data/milvus_data/metadata_milvus.json",
                          "saves/knowledge_base_data/lightrag_data/metadata_lightrag.json"}) {
        const std::string text = read_sample(f);
        const json j = json_of(text, f);
        EXPECT_TRUE(j.is_object()) << f;
        EXPECT_EQ(json::parse(canonical(j)), j) << f;
        EXPECT_LT(canonical(j).size(), text.size()) << f;  // compact
    }
    EXPECT_TRUE(json_of(read_sample("saves/knowledge_base_data/global_metadata.json"), "g")
                    .contains("databases"));
}

}  // namespace
}  // namespace yuxi::config::agent
