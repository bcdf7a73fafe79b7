// Logging: the JSON-lines formatter on hostile messages, and the real agent's log at every
// level in both formats: the DATABASE_URL password and REDIS_PASSWORD never appear, nor
// does any configuration value (its key may), and every JSON line is one JSON object.
#include <gtest/gtest.h>
#include <spdlog/details/log_msg.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "agent/ops/logging.hpp"
#include "database_test_support.hpp"

namespace yuxi::config::test {
namespace {

using nlohmann::json;

std::string format_json(std::string_view message) {
    agent::JsonFormatter f;
    const spdlog::details::log_msg msg(spdlog::source_loc{}, "yuxi-config-agent",
                                       spdlog::level::warn,
                                       spdlog::string_view_t(message.data(), message.size()));
    spdlog::memory_buf_t out;
    f.format(msg, out);
    return std::string(out.data(), out.size());
}

TEST(JsonFormatter, WritesOneValidObjectPerLineWhateverTheMessage) {
    const std::string hostile =
        "quote \" backslash \\ newline \n tab \t cr \r nul " + std::string(1, '\0') +
        " bell \x07 del \x7f unicode é 中 😀 "
        "bad utf8 \xff\xfe overlong \xc0\xaf surrogate \xed\xa0\x80 cut \xe4\xb8";
    const std::string line = format_json(hostile);
    ASSERT_TRUE(line.ends_with("}\n"));
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
    const json j = json::parse(line);  // throws on invalid JSON or UTF-8
    EXPECT_EQ(j.at("level"), "warning");
    EXPECT_EQ(j.at("logger"), "yuxi-config-agent");
    const std::string ts = j.at("ts");
    EXPECT_EQ(ts.size(), 24u) << ts;  // 2024-05-01T12:00:00.123Z
    EXPECT_TRUE(ts.ends_with("Z"));
    const std::string msg = j.at("msg");
    EXPECT_NE(msg.find("quote \" backslash \\ newline \n tab \t cr \r nul "), std::string::npos);
    EXPECT_NE(msg.find(std::string(1, '\0')), std::string::npos);
    EXPECT_NE(msg.find("unicode é 中 😀"), std::string::npos);
    EXPECT_NE(msg.find("bad utf8 \xEF\xBF\xBD\xEF\xBF\xBD"), std::string::npos);
    EXPECT_EQ(j.size(), 4u);
}

constexpr std::string_view kPassword = "Sup3rS3cret";
constexpr std::string_view kRedisPassword = "R3d1sP4ssw0rd";
constexpr std::string_view kSigningKey = "eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDE=";
constexpr std::string_view kCanary = "VALUE-CANARY-123";

class LoggingTest : public ::testing::TestWithParam<std::string> {
  protected:
    void SetUp() override {
        dir_ = temp_dir("logging");
        static int counter = 0;
        segment_ = unique_segment("log-" + GetParam() + "-" + std::to_string(counter++));
        unlink_segment(segment_);
    }
    void TearDown() override {
        agent_.kill();
        unlink_segment(segment_);
        if (HasFailure()) {
            std::cerr << "agent log:\n" << read_text(log()).substr(0, 20000);
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path log() const { return dir_ / "agent.log"; }
    bool json_format() const { return GetParam() == "json"; }

    // Every line a JSON object with ts, level, logger and msg (in the JSON format).
    void expect_lines_well_formed(const std::string& text) {
        std::istringstream in(text);
        std::string line;
        int n = 0;
        while (std::getline(in, line)) {
            ++n;
            if (!json_format()) {
                continue;
            }
            json j;
            ASSERT_NO_THROW(j = json::parse(line)) << line;
            ASSERT_TRUE(j.is_object()) << line;
            for (const char* field : {"ts", "level", "logger", "msg"}) {
                EXPECT_TRUE(j.contains(field) && j[field].is_string()) << field << ": " << line;
            }
        }
        EXPECT_GT(n, 0);
    }

    fs::path dir_;
    std::string segment_;
    Agent agent_;
};

TEST_P(LoggingTest, SecretsNeverReachTheLog) {
    // Unreachable PostgreSQL and Redis: the agent logs its attempts, at trace level.
    const std::string url = "postgresql://yuxi:" + std::string(kPassword) + "@127.0.0.1:1/yuxi";
    agent_.spawn({"--http", "127.0.0.1:0", "--segment", segment_},
                 {"CONFIG_MODE=database", "DATABASE_URL=" + url, "LOG_LEVEL=trace",
                  "LOG_FORMAT=" + GetParam(), "REDIS_HOST=127.0.0.1", "REDIS_PORT=1",
                  "REDIS_PASSWORD=" + std::string(kRedisPassword),
                  "YUXI_CONFIG_SIGNING_KEY=" + std::string(kSigningKey)},
                 log());
    std::this_thread::sleep_for(3s);
    const Exit e = agent_.stop();
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 0);
    const std::string text = read_text(log());
    EXPECT_EQ(text.find(kPassword), std::string::npos);
    EXPECT_EQ(text.find(kRedisPassword), std::string::npos);
    EXPECT_EQ(text.find(kSigningKey), std::string::npos);
    EXPECT_EQ(text.find("yuxi-config-test-signing-key"), std::string::npos);
    EXPECT_NE(text.find("127.0.0.1:1"), std::string::npos) << "the redacted URL is logged";
    expect_lines_well_formed(text);

    // A URL the agent refuses (a bad port): the error names it, redacted.
    Agent bad;
    const fs::path bad_log = dir_ / "bad.log";
    bad.spawn({"--http", "127.0.0.1:0", "--segment", segment_},
              {"CONFIG_MODE=database", "LOG_LEVEL=trace", "LOG_FORMAT=" + GetParam(),
               "DATABASE_URL=postgresql://yuxi:" + std::string(kPassword) + "@db:99999/yuxi"},
              bad_log);
    const Exit be = bad.wait_exit(10s);
    EXPECT_TRUE(be.exited);
    EXPECT_NE(be.code, 0);
    EXPECT_EQ(read_text(bad_log).find(kPassword), std::string::npos) << read_text(bad_log);
}

TEST_P(LoggingTest, ConfigurationValuesNeverReachTheLog) {
    const fs::path config = dir_ / "base.toml";
    const fs::path meta = dir_ / "meta.json";
    std::ofstream(config) << "canary_key = \"" << kCanary << "\"\nother = 1\n";
    std::ofstream(meta) << "{\"canary_meta\": \"" << kCanary << "\"}";
    agent_.spawn({"--http", "127.0.0.1:0", "--segment", segment_, "--config-file", config.string(),
                  "--metadata", "meta=" + meta.string()},
                 {"CONFIG_MODE=file", "LOG_LEVEL=trace", "LOG_FORMAT=" + GetParam()}, log());
    const auto c = open_when_ready(segment_);
    ASSERT_TRUE(c);
    ASSERT_TRUE(until_published(*c, [&] { return c->get("canary_key").has_value(); }));
    // A change, a bad file holding the value, a fix, a deletion: each logged, never the value.
    std::ofstream(config) << "canary_key = \"" << kCanary << "-2\"\nother = 2\n";
    ASSERT_TRUE(until_published(*c, [&] { return c->get("other") == "2"; }));
    std::ofstream(config) << "canary_key = \"" << kCanary << "-3\"\nother = [\n";
    std::this_thread::sleep_for(300ms);
    std::ofstream(config) << "other = 4\n";
    ASSERT_TRUE(until_published(*c, [&] { return !c->get("canary_key").has_value(); }));
    const Exit e = agent_.stop();
    EXPECT_EQ(e.code, 0);
    const std::string text = read_text(log());
    EXPECT_EQ(text.find("CANARY"), std::string::npos);
    EXPECT_NE(text.find("canary_key"), std::string::npos) << "keys are logged";
    expect_lines_well_formed(text);
}

INSTANTIATE_TEST_SUITE_P(Formats, LoggingTest, ::testing::Values("human", "json"),
                         [](const auto& p) { return p.param; });

}  // namespace
}  // namespace yuxi::config::test
