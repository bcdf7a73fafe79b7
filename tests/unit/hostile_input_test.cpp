// Every decoder of outside input against the committed hostile-input table
// (tests/fuzz/corpus/, written by tests/fuzz/make_seeds.py) and against the inputs too
// large to commit: each is refused with a reason, or decoded when it is good, and none
// throws, crashes or runs away with memory.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "core/change_message.hpp"
#include "core/json_document.hpp"
#include "core/toml_json.hpp"
#include "decoders.hpp"

namespace yuxi::config::harness {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = YUXI_FUZZ_CORPUS;

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string deep_array(std::size_t depth) {
    return std::string(depth, '[') + std::string(depth, ']');
}

TEST(HostileInputTest, EveryDecoderHasATable) {
    for (const std::string_view name : decoder_names()) {
        const fs::path dir = kCorpus / std::string(name);
        ASSERT_TRUE(fs::is_directory(dir)) << dir;
        std::set<std::string> kinds;
        for (const auto& f : fs::directory_iterator(dir)) {
            kinds.insert(f.path().filename().string().substr(0, 3));
        }
        EXPECT_TRUE(kinds.contains("goo") && kinds.contains("bad")) << name;
    }
}

TEST(HostileInputTest, TheTableDecodesAsNamed) {
    std::size_t cases = 0;
    for (const std::string_view name : decoder_names()) {
        for (const auto& f : fs::directory_iterator(kCorpus / std::string(name))) {
            const std::string file = f.path().filename().string();
            const std::string input = read_file(f.path());
            const Outcome got = run_decoder(name, input);
            if (file.starts_with("good-")) {
                EXPECT_EQ(got, Outcome::accepted) << name << "/" << file;
            } else if (file.starts_with("bad-")) {
                EXPECT_EQ(got, Outcome::refused) << name << "/" << file;
            } else {
                EXPECT_TRUE(file.starts_with("any-")) << name << "/" << file;
            }
            ++cases;
        }
    }
    EXPECT_GT(cases, 400u);
}

TEST(HostileInputTest, TheFleetCrasherIsRefusedNamingTheField) {
    const auto b = decode_batch(R"({"v":1,"revision":42,"prev":40,"commit_ns":1,"fence":7,)"
                                R"("entries":[{"ns":"metadata","key":"x","op":555}]})",
                                kMaxMessageBytes);
    ASSERT_FALSE(b);
    EXPECT_NE(b.reason().find("\"op\""), std::string::npos) << b.reason();
    EXPECT_NE(b.reason().find("entry 0"), std::string::npos) << b.reason();
}

TEST(HostileInputTest, NestingTwoHundredThousandDeepIsRefusedWithoutRecursion) {
    const std::string deep = deep_array(200000);
    for (const std::string_view name : {"batch", "snapshot", "json_file", "agent_report"}) {
        const std::string input = name == "agent_report" ? "pod\n" + deep : deep;
        EXPECT_EQ(run_decoder(name, input), Outcome::refused) << name;
    }
    const auto j = parse_json(deep, {deep.size(), 64});
    ASSERT_FALSE(j);
    EXPECT_NE(j.reason().find("deeper than 64"), std::string::npos) << j.reason();
    std::string nested;
    for (int i = 0; i < 200000; ++i) {
        nested += R"({"a":)";
    }
    EXPECT_FALSE(parse_json(nested + "1" + std::string(200000, '}'), {1 << 30, 64}));
}

TEST(HostileInputTest, DeepTomlIsRefusedBeforeTomlPlusPlusSeesIt) {
    std::string dotted = "a";
    std::string header = "[a";
    std::string inline_tables = "a = ";
    for (int i = 0; i < 100000; ++i) {
        dotted += ".a";
        header += ".a";
    }
    for (int i = 0; i < 20000; ++i) {
        inline_tables += "{b = ";
    }
    for (const std::string& text :
         {dotted + " = 1\n", header + "]\nx = 1\n", inline_tables + "1" + std::string(20000, '}'),
          "a = " + deep_array(100000) + "\n"}) {
        const auto doc = parse_toml_document(text, "deep.toml");
        ASSERT_FALSE(doc);
        EXPECT_NE(doc.reason().message.find("nested deeper"), std::string::npos)
            << doc.reason().message.substr(0, 200);
    }
    // Dots inside strings and comments are not nesting.
    EXPECT_TRUE(parse_toml_document(
        "a = \"" + std::string(100000, '.') + "\" # " + std::string(1000, '.') + "\n",
        "dots.toml"));
}

TEST(HostileInputTest, SixtyFourMebibyteStringsAreRefusedWhereTheyDoNotBelong) {
    const std::string big(64ULL << 20, 'x');
    // On pub/sub: over the message limit, refused unread.
    const std::string message =
        R"({"v":1,"revision":2,"prev":1,"entries":[{"ns":"config","key":")" + big +
        R"(","op":"D"}]})";
    const auto on_pubsub = decode_batch(message, kMaxMessageBytes);
    ASSERT_FALSE(on_pubsub);
    EXPECT_NE(on_pubsub.reason().find("too large"), std::string::npos);
    // In the stream: within the document limit, but no key is that long.
    const auto in_stream = decode_batch(message, kMaxStreamEntryBytes);
    ASSERT_FALSE(in_stream);
    EXPECT_NE(in_stream.reason().find("\"key\""), std::string::npos) << in_stream.reason();
    EXPECT_EQ(run_decoder("agent_report", "pod\n" + big), Outcome::refused);
    EXPECT_EQ(run_decoder("notify", big), Outcome::refused);
    EXPECT_EQ(run_decoder("database_url", "postgresql://" + big), Outcome::refused);
}

TEST(HostileInputTest, FieldsReaderNamesTheFieldAndTheTypes) {
    const auto doc = parse_json(R"({"n":"x","s":1,"a":{},"u":-1,"big":18446744073709551615})", {});
    ASSERT_TRUE(doc);
    {
        Fields f(*doc, "doc");
        (void)f.u64("n");
        EXPECT_EQ(f.error(), "doc: \"n\" is a string, not a whole number");
    }
    {
        Fields f(*doc, "doc");
        (void)f.text("s", 10);
        EXPECT_EQ(f.error(), "doc: \"s\" is an integer, not a string");
    }
    {
        Fields f(*doc, "doc");
        (void)f.u64("u");
        EXPECT_EQ(f.error(), "doc: \"u\" is a negative integer, not a whole number");
    }
    {
        Fields f(*doc, "doc");
        (void)f.i64("big");
        EXPECT_NE(f.error().find("too large"), std::string::npos) << f.error();
    }
    {
        Fields f(*doc, "doc");
        EXPECT_EQ(f.u64_or("absent", 7), 7u);
        EXPECT_TRUE(f.ok());
        (void)f.array("a", 3);
        EXPECT_EQ(f.error(), "doc: \"a\" is an object, not an array");
        // After the first problem every read gives nothing and the first error stays.
        EXPECT_FALSE(f.u64("big"));
        EXPECT_EQ(f.error(), "doc: \"a\" is an object, not an array");
    }
    const nlohmann::json list = nlohmann::json::array({1});
    Fields not_object(list, "list");
    EXPECT_EQ(not_object.error(), "list is an array, not an object");
}

}  // namespace
}  // namespace yuxi::config::harness
