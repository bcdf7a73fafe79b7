// yuxi-config-agent in file mode, end to end: the real binary on temporary copies of
// samples/, read through yuxi::config::Client. Edits in place and by rename, deletions,
// every kind of bad input (the last good state stays, the source goes stale, a fix makes
// it ok), metadata edits and a 16 MiB value, a second agent, SIGTERM and a restart,
// --check. (Over 600 lines: one fixture, one scenario per test.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kTimeout = 5s;

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Truncates and rewrites the file, as Yuxi-Know's Config.save() does.
void write_in_place(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    ASSERT_TRUE(out) << p;
}

// Writes a temporary file beside it and renames it over, as most editors do.
void write_by_rename(const fs::path& p, const std::string& text) {
    const fs::path tmp = p.string() + ".tmp~";
    write_in_place(tmp, text);
    fs::rename(tmp, p);
}

std::string replace_once(std::string text, const std::string& from, const std::string& to) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) {
        text.replace(at, from.size(), to);
    }
    return text;
}

std::string canonical_file(const fs::path& p) {
    return json::parse(read_text(p)).dump();
}

// Polls `done` until it holds or `timeout` passes. For what has no wake-up of its own (the
// source state, a process starting or exiting); values are awaited with wait_for_change.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(2ms);
    }
    return true;
}

// Sleeps on the segment's futex until `done` holds, re-checking after each new revision.
bool until_published(const Client& c, const std::function<bool()>& done,
                     std::chrono::milliseconds timeout = kTimeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const std::uint64_t rev = c.revision();
        if (done()) {
            return true;
        }
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= 0s) {
            return false;
        }
        (void)c.wait_for_change(rev, std::chrono::duration_cast<std::chrono::nanoseconds>(left));
    }
}

using test::Exit;

class FileModeTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/yuxi-file-mode-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
        fs::copy(fs::path(YUXI_SAMPLES_DIR) / "saves", dir_ / "saves", fs::copy_options::recursive);
        segment_ = std::string("yuxi-test-fm-") +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
                   std::to_string(::getpid());
        unlink_segment();
    }

    void TearDown() override {
        for (const pid_t pid : pids_) {
            test::kill_and_reap(pid);
        }
        unlink_segment();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    void unlink_segment() {
        ::unlink(detail::segment_path(segment_).c_str());
        ::unlink(detail::lock_path(segment_).c_str());
        ::unlink(detail::waiters_path(segment_).c_str());
        // Left by a writer killed in the middle of replacing the segment.
        ::unlink((detail::segment_path(segment_) + ".tmp.retiring").c_str());
    }

    fs::path config_dir() const { return dir_ / "saves/config"; }
    fs::path base_toml() const { return config_dir() / "base.toml"; }
    fs::path custom_toml() const { return config_dir() / "custom_providers.toml"; }
    fs::path kb_dir() const { return dir_ / "saves/knowledge_base_data"; }
    fs::path global_json() const { return kb_dir() / "global_metadata.json"; }
    fs::path milvus_json() const { return kb_dir() / "milvus_data/metadata_milvus.json"; }
    fs::path lightrag_json() const { return kb_dir() / "lightrag_data/metadata_lightrag.json"; }

    std::vector<std::string> default_args() const {
        return {"--segment",     segment_,
                "--config-file", base_toml().string(),
                "--config-file", custom_toml().string(),
                "--metadata",    "global_metadata=" + global_json().string(),
                "--metadata",    "milvus=" + milvus_json().string(),
                "--metadata",    "lightrag=" + lightrag_json().string(),
                "--log-level",   "debug",
                "--http",        "127.0.0.1:0"};
    }

    // Starts the agent in our environment less whatever would configure it, plus `env`
    // ("NAME=value"); its stdout and stderr go to `log`.
    pid_t spawn(const std::vector<std::string>& args, const fs::path& log,
                const std::vector<std::string>& env = {}) {
        std::vector<std::string> argv = {YUXI_AGENT_BIN};
        argv.insert(argv.end(), args.begin(), args.end());
        const pid_t pid = test::spawn_process(
            argv,
            test::child_environment({"CONFIG_MODE=", "YUXI_", "LOG_LEVEL=", "DATABASE_URL"}, env),
            log, test::LogMode::truncate);
        EXPECT_GT(pid, 0) << "posix_spawn " << YUXI_AGENT_BIN << ": " << std::strerror(errno);
        if (pid > 0) {
            pids_.push_back(pid);
        }
        return pid;
    }

    Exit wait_exit(pid_t pid, std::chrono::milliseconds timeout = kTimeout) {
        const Exit out = test::wait_exit(pid, timeout);
        if (out.exited) {
            std::erase(pids_, pid);
        }
        return out;
    }

    bool alive(pid_t pid) const {
        int status = 0;
        return ::waitpid(pid, &status, WNOHANG) == 0;
    }

    // Starts the agent and waits until it has published its first snapshot.
    pid_t start(const std::vector<std::string>& extra = {}) {
        std::vector<std::string> args = default_args();
        args.insert(args.end(), extra.begin(), extra.end());
        log_ = dir_ / ("agent-" + std::to_string(++started_) + ".log");
        const pid_t pid = spawn(args, log_);
        const bool ready = eventually([&] {
            if (!alive(pid)) {
                return true;
            }
            try {
                return Client::open(segment_).health().source_state != SourceState::starting;
            } catch (const SegmentError&) {
                return false;
            }
        });
        EXPECT_TRUE(ready && alive(pid)) << "the agent did not start:\n" << log();
        return pid;
    }

    std::string log() const { return read_text(log_); }

    SourceState state(const Client& c) const { return c.health().source_state; }

    bool becomes(const Client& c, SourceState s) const {
        return eventually([&] { return state(c) == s; });
    }

    fs::path dir_;
    std::string segment_;
    fs::path log_;
    int started_ = 0;
    std::vector<pid_t> pids_;
};

TEST_F(FileModeTest, PublishesTheSamplesAsCanonicalJson) {
    start();
    const Client c = Client::open(segment_);
    EXPECT_EQ(c.revision(), 1u);  // a fresh segment name: nothing to continue from

    std::set<std::string> keys;
    std::size_t metadata_entries = 0;
    const Snapshot snap = c.snapshot();
    ASSERT_TRUE(snap.for_each(Namespace::config, "", [&](const EntryInfo& e) {
        keys.emplace(e.key);
        EXPECT_EQ(json::parse(e.value).dump(), e.value) << e.key;  // canonical
        EXPECT_EQ(e.category, "");
        EXPECT_EQ(e.revision, 1u);
    }));
    ASSERT_TRUE(
        snap.for_each(Namespace::metadata, "", [&](const EntryInfo&) { ++metadata_entries; }));
    EXPECT_EQ(keys, (std::set<std::string>{"save_dir", "model_dir", "enable_reranker",
                                           "enable_content_guard", "enable_content_guard_llm",
                                           "enable_web_search", "default_model", "fast_model",
                                           "embed_model", "reranker", "content_guard_llm_model",
                                           "default_agent_id", "model_names"}));
    EXPECT_EQ(metadata_entries, 3u);

    EXPECT_EQ(c.get("embed_model"), "\"siliconflow/BAAI/bge-m3\"");
    EXPECT_EQ(c.get("enable_reranker"), "true");
    EXPECT_EQ(c.get("enable_content_guard"), "false");
    EXPECT_EQ(c.get("model_dir"), "\"\"");
    const json providers = json::parse(*c.get("model_names"));
    EXPECT_EQ(providers.size(), 10u);  // 8 from base.toml, 2 from custom_providers.toml
    EXPECT_EQ(providers["openai"].dump(),
              R"({"base_url":"https://api.openai.com/v1","custom":false,)"
              R"("default":"gpt-4o-mini","env":"OPENAI_API_KEY",)"
              R"("models":["gpt-4","gpt-4o","gpt-4o-mini"],"name":"OpenAI",)"
              R"("url":"https://platform.openai.com/docs/models"})");
    EXPECT_EQ(providers["ollama-local"]["models"].dump(), R"(["qwen2.5:7b","llama3.2:latest"])");

    EXPECT_EQ(c.metadata("global_metadata"), canonical_file(global_json()));
    EXPECT_EQ(c.metadata("milvus"), canonical_file(milvus_json()));
    EXPECT_EQ(c.metadata("lightrag"), canonical_file(lightrag_json()));

    const Health h = c.health();
    EXPECT_EQ(h.source_state, SourceState::ok);
    EXPECT_TRUE(h.fresh());
    EXPECT_EQ(h.entries, 16u);
}

TEST_F(FileModeTest, InPlaceEditPublishesOnlyTheChangedKey) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    write_in_place(base_toml(), replace_once(read_text(base_toml()), "\"siliconflow/BAAI/bge-m3\"",
                                             "\"siliconflow/Qwen/Qwen3-Embedding-8B\""));
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_EQ(c.get("embed_model"), "\"siliconflow/Qwen/Qwen3-Embedding-8B\"");
    EXPECT_EQ(c.view("embed_model")->revision(), r0 + 1);
    for (const char* unchanged : {"fast_model", "model_names", "enable_reranker"}) {
        EXPECT_EQ(c.view(unchanged)->revision(), r0) << unchanged;
    }
    EXPECT_EQ(c.view("milvus", Namespace::metadata)->revision(), r0);
    EXPECT_EQ(state(c), SourceState::ok);
}

TEST_F(FileModeTest, RenameOverPublishesNestedChange) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    write_by_rename(base_toml(), replace_once(read_text(base_toml()), "default = \"gpt-4o-mini\"",
                                              "default = \"gpt-4o\""));
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_EQ(json::parse(*c.get("model_names"))["openai"]["default"], "gpt-4o");
    EXPECT_EQ(c.view("model_names")->revision(), r0 + 1);
    EXPECT_EQ(c.view("embed_model")->revision(), r0);

    // Another rename round trip, the way vim does it: the original moved away first.
    const std::uint64_t r1 = c.revision();
    const std::string text = read_text(base_toml());
    fs::rename(base_toml(), config_dir() / "base.toml~");
    write_in_place(base_toml(),
                   replace_once(text, "enable_web_search = true", "enable_web_search = false"));
    ASSERT_TRUE(until_published(c, [&] { return c.get("enable_web_search") == "false"; }));
    EXPECT_GE(c.revision(), r1 + 1);
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, RewritingTheSameContentPublishesNothing) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    write_in_place(base_toml(), read_text(base_toml()));
    write_by_rename(global_json(), read_text(global_json()));
    write_in_place(config_dir() / "unrelated.txt", "not watched\n");
    EXPECT_FALSE(c.wait_for_change(r0, 300ms));
    EXPECT_EQ(c.revision(), r0);
    // The agent is alive and the next real change is exactly one revision.
    write_in_place(base_toml(), replace_once(read_text(base_toml()), "enable_reranker = true",
                                             "enable_reranker = false"));
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
}

TEST_F(FileModeTest, DeletedKeyDisappearsAndNewKeyAppears) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    std::string text = replace_once(read_text(base_toml()),
                                    "fast_model = \"siliconflow/THUDM/GLM-4-9B-0414\"\n", "");
    text = "new_key = [1, 2.5, \"x\"]\n" + text;
    write_in_place(base_toml(), text);
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_FALSE(c.get("fast_model").has_value());
    EXPECT_EQ(c.get("new_key"), R"([1,2.5,"x"])");
    EXPECT_EQ(c.view("new_key")->revision(), r0 + 1);
}

TEST_F(FileModeTest, LaterConfigFileOverridesAndMergesTables) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    // Top-level keys go before the first [table] header, or they would belong to it.
    write_by_rename(custom_toml(), "embed_model = \"local-vllm/bge\"\n" + read_text(custom_toml()) +
                                       "\n[model_names.openai]\ndefault = \"gpt-4o\"\n");
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_EQ(c.get("embed_model"), "\"local-vllm/bge\"");
    const json openai = json::parse(*c.get("model_names"))["openai"];
    EXPECT_EQ(openai["default"], "gpt-4o");  // from the later file
    EXPECT_EQ(openai["name"], "OpenAI");     // merged, from the earlier one
}

TEST_F(FileModeTest, TomlSyntaxErrorKeepsLastGoodUntilFixed) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    const std::string good = read_text(base_toml());
    // Line 3 of the sample is `enable_reranker = true`.
    write_in_place(base_toml(), replace_once(good, "enable_reranker = true", "enable_reranker = "));
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_NE(log().find("base.toml:3:"), std::string::npos) << log();
    EXPECT_EQ(c.revision(), r0);
    EXPECT_EQ(c.get("enable_reranker"), "true");
    EXPECT_EQ(c.get("embed_model"), "\"siliconflow/BAAI/bge-m3\"");

    const pid_t pid = pids_.front();
    EXPECT_TRUE(alive(pid));
    write_in_place(base_toml(),
                   replace_once(good, "enable_reranker = true", "enable_reranker = false"));
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_EQ(c.get("enable_reranker"), "false");
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, InvalidUtf8KeepsLastGoodUntilFixed) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    const std::string toml = read_text(base_toml());
    write_in_place(base_toml(), replace_once(toml, "\"ChatbotAgent\"", "\"Chatbot\xff\xfe\""));
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_NE(log().find("base.toml:12:"), std::string::npos) << log();
    EXPECT_EQ(c.get("default_agent_id"), "\"ChatbotAgent\"");
    write_in_place(base_toml(), toml);
    ASSERT_TRUE(becomes(c, SourceState::ok)) << log();

    const std::string meta = read_text(global_json());
    write_in_place(global_json(), replace_once(meta, "\"2.0\"", "\"2.\xc3\x28\""));
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_NE(log().find("global_metadata.json:"), std::string::npos);
    EXPECT_EQ(c.metadata("global_metadata"), json::parse(meta).dump());
    write_in_place(global_json(), meta);
    ASSERT_TRUE(becomes(c, SourceState::ok)) << log();
    EXPECT_EQ(c.revision(), r0);  // the content came back as it was: nothing to publish
    EXPECT_TRUE(alive(pids_.front()));
}

TEST_F(FileModeTest, NanAndInfAreRefusedNamingTheKey) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    const std::string good = read_text(base_toml());
    write_in_place(base_toml(), "[x]\ny = inf\n" + good);
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_NE(log().find("key 'x.y' holds inf, which JSON cannot represent"), std::string::npos)
        << log();
    EXPECT_FALSE(c.get("x").has_value());
    EXPECT_EQ(c.revision(), r0);

    write_in_place(base_toml(), "x = { y = 1.5 }\n" + good);
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.get("x"), R"({"y":1.5})");
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, MissingFileAtStartIsWaitedFor) {
    const std::string good = read_text(base_toml());
    fs::remove(base_toml());
    start();
    const Client c = Client::open(segment_);
    EXPECT_EQ(state(c), SourceState::stale);  // started, publishing what exists
    EXPECT_NE(log().find("base.toml: missing"), std::string::npos) << log();
    EXPECT_FALSE(c.get("embed_model").has_value());
    EXPECT_EQ(json::parse(*c.get("model_names")).size(), 2u);  // custom_providers only
    EXPECT_TRUE(c.metadata("global_metadata").has_value());

    const std::uint64_t r0 = c.revision();
    write_by_rename(base_toml(), good);
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_EQ(c.get("embed_model"), "\"siliconflow/BAAI/bge-m3\"");
    EXPECT_EQ(json::parse(*c.get("model_names")).size(), 10u);
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, VanishedFileKeepsLastGoodAndIsReadWhenBack) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    const std::string good = read_text(base_toml());
    fs::remove(base_toml());
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_EQ(c.get("embed_model"), "\"siliconflow/BAAI/bge-m3\"");
    EXPECT_EQ(c.revision(), r0);

    // Back with the same content (created, then written: IN_CREATE, IN_CLOSE_WRITE).
    write_in_place(base_toml(), good);
    ASSERT_TRUE(becomes(c, SourceState::ok)) << log();
    EXPECT_EQ(c.revision(), r0);

    fs::remove(base_toml());
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    write_by_rename(base_toml(), replace_once(good, "default_agent_id = \"ChatbotAgent\"",
                                              "default_agent_id = \"ReActAgent\""));
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.get("default_agent_id"), "\"ReActAgent\"");
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, DirectoryRemovedAndRecreated) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    const fs::path lightrag_dir = lightrag_json().parent_path();
    const std::string good = read_text(lightrag_json());
    fs::remove_all(lightrag_dir);
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_EQ(c.metadata("lightrag"), json::parse(good).dump());

    // The directory's watch is re-added on the next one-second tick.
    fs::create_directory(lightrag_dir);
    write_by_rename(lightrag_json(), R"({"databases": {}, "note": "rebuilt"})");
    ASSERT_TRUE(until_published(c, [&] {
        return c.metadata("lightrag") == R"({"databases":{},"note":"rebuilt"})";
    })) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, OversizedValueIsRefusedAndTheRestPublished) {
    start({"--max-value-bytes", "64K"});
    const Client c = Client::open(segment_);
    const std::string before = *c.metadata("global_metadata");
    json big = json::parse(read_text(global_json()));
    big["padding"] = std::string(100 * 1024, 'p');
    write_by_rename(global_json(), big.dump(2));
    write_in_place(base_toml(), replace_once(read_text(base_toml()), "enable_reranker = true",
                                             "enable_reranker = false"));
    ASSERT_TRUE(until_published(c, [&] { return c.get("enable_reranker") == "false"; })) << log();
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_EQ(c.metadata("global_metadata"), before);  // the last good value stays
    EXPECT_NE(log().find("metadata key 'global_metadata' refused"), std::string::npos) << log();
    EXPECT_NE(log().find("--max-value-bytes"), std::string::npos);
    EXPECT_TRUE(alive(pids_.front()));

    big["padding"] = "small";
    const std::uint64_t r = c.revision();
    write_by_rename(global_json(), big.dump());
    ASSERT_TRUE(c.wait_for_change(r, kTimeout)) << log();
    EXPECT_EQ(c.metadata("global_metadata"), big.dump());
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, MetadataEditsArePublished) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    json milvus = json::parse(read_text(milvus_json()));
    ASSERT_TRUE(milvus.is_object());
    milvus["edited_by_test"] = {{"ok", true}};
    write_by_rename(milvus_json(), milvus.dump(4));
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_EQ(c.metadata("milvus"), milvus.dump());
    EXPECT_EQ(c.view("milvus", Namespace::metadata)->revision(), r0 + 1);
    EXPECT_EQ(c.view("global_metadata", Namespace::metadata)->revision(), r0);
    EXPECT_EQ(c.view("embed_model")->revision(), r0);

    // A JSON syntax error is stale, with its line and column; the edit before it stays.
    write_in_place(milvus_json(), "{\n  \"databases\": {,\n}\n");
    ASSERT_TRUE(becomes(c, SourceState::stale)) << log();
    EXPECT_NE(log().find("metadata_milvus.json:2:"), std::string::npos) << log();
    EXPECT_EQ(c.metadata("milvus"), milvus.dump());
}

TEST_F(FileModeTest, SixteenMiBMetadataValue) {
    start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    json doc = json::parse(read_text(lightrag_json()));
    doc["blob"] = std::string((16u << 20) + 4096, 'b');
    const std::string expected = doc.dump();
    ASSERT_GT(expected.size(), 16u << 20);
    write_by_rename(lightrag_json(), expected);
    ASSERT_TRUE(c.wait_for_change(r0, 20s)) << log();
    EXPECT_EQ(c.revision(), r0 + 1);
    const auto v = c.view("lightrag", Namespace::metadata);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->size(), expected.size());
    EXPECT_TRUE(v->data() == expected);
    EXPECT_EQ(c.get("embed_model"), "\"siliconflow/BAAI/bge-m3\"");
    EXPECT_EQ(state(c), SourceState::ok);
}

TEST_F(FileModeTest, SecondAgentOnTheSegmentIsRefused) {
    const pid_t first = start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    const fs::path log2 = dir_ / "second.log";
    const pid_t second = spawn(default_args(), log2);
    const Exit e = wait_exit(second);
    ASSERT_TRUE(e.exited);
    EXPECT_NE(e.code, 0);
    EXPECT_NE(read_text(log2).find("is already writing segment '" + segment_ + "'"),
              std::string::npos)
        << read_text(log2);
    EXPECT_TRUE(alive(first));
    EXPECT_EQ(c.revision(), r0);
    const Health h = c.health();
    EXPECT_EQ(h.source_state, SourceState::ok);
    EXPECT_EQ(h.writer_pid, static_cast<std::uint64_t>(first));
}

TEST_F(FileModeTest, SigtermStopsCleanlyAndRestartContinuesRevisions) {
    const pid_t pid = start();
    const Client c = Client::open(segment_);
    const std::uint64_t r0 = c.revision();
    write_in_place(base_toml(), replace_once(read_text(base_toml()), "enable_reranker = true",
                                             "enable_reranker = false"));
    ASSERT_TRUE(c.wait_for_change(r0, kTimeout)) << log();

    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    const Exit e = wait_exit(pid);
    ASSERT_TRUE(e.exited);
    EXPECT_EQ(e.code, 0) << log();
    const Health h = c.health();
    EXPECT_EQ(h.source_state, SourceState::stopped);
    EXPECT_FALSE(h.writer_alive);
    EXPECT_EQ(c.revision(), r0 + 1);
    EXPECT_EQ(c.get("enable_reranker"), "false");
    EXPECT_EQ(Client::open(segment_).get("embed_model"), "\"siliconflow/BAAI/bge-m3\"");

    // A restarted agent continues from the segment's revision, never below it.
    start();
    ASSERT_TRUE(until_published(c, [&] { return c.revision() == r0 + 2; })) << log();
    EXPECT_EQ(c.get("enable_reranker"), "false");
    EXPECT_TRUE(becomes(c, SourceState::ok));
}

TEST_F(FileModeTest, CommandLineErrorsExitWithStatus2) {
    const fs::path out = dir_ / "cli.log";
    Exit e = wait_exit(spawn({"--bogus"}, out));
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 2);
    // One line, naming the flag and pointing at --help; not the whole usage text.
    const std::string bogus = read_text(out);
    EXPECT_NE(bogus.find("unknown flag '--bogus'"), std::string::npos) << bogus;
    EXPECT_NE(bogus.find("--help"), std::string::npos) << bogus;
    EXPECT_EQ(bogus.find("Usage:"), std::string::npos) << bogus;
    EXPECT_EQ(std::count(bogus.begin(), bogus.end(), '\n'), 1) << bogus;

    // Database mode without a DATABASE_URL (spawn() drops the environment's).
    e = wait_exit(spawn({"--mode=database", "--segment", segment_}, out));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(read_text(out).find("database mode needs a PostgreSQL URL"), std::string::npos);

    e = wait_exit(spawn({"--segment", segment_}, out, {"CONFIG_MODE=database"}));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(read_text(out).find("database mode needs a PostgreSQL URL"), std::string::npos);

    e = wait_exit(spawn({"--http", "localhost"}, out));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(read_text(out).find("--http: 'localhost' is not HOST:PORT"), std::string::npos);

    e = wait_exit(spawn({"--help"}, out));
    EXPECT_EQ(e.code, 0);
    EXPECT_NE(read_text(out).find("YUXI_CONFIG_MAX_VALUE_BYTES"), std::string::npos);
    EXPECT_FALSE(fs::exists(detail::segment_path(segment_)));
}

// --check parses what the agent would serve, names the first problem, and writes nothing.
TEST_F(FileModeTest, CheckValidatesFilesWithoutTouchingTheSegment) {
    const fs::path out = dir_ / "check.log";
    std::vector<std::string> args = default_args();
    args.push_back("--check");
    Exit e = wait_exit(spawn(args, out));
    EXPECT_EQ(e.code, 0) << read_text(out);
    EXPECT_NE(read_text(out).find("OK"), std::string::npos) << read_text(out);

    write_in_place(base_toml(), "embed_model = \"ok\"\ntop_k = [1, 2,\n");
    e = wait_exit(spawn(args, out));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(read_text(out).find(base_toml().string() + ":2:"), std::string::npos)
        << read_text(out);

    write_in_place(base_toml(), "[retrieval]\nscore = nan\n");
    e = wait_exit(spawn(args, out));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(read_text(out).find("key 'retrieval.score'"), std::string::npos) << read_text(out);

    write_in_place(base_toml(), "big = \"" + std::string(2000, 'x') + "\"\n");
    args.insert(args.end(), {"--max-value-bytes", "1K"});
    e = wait_exit(spawn(args, out));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(read_text(out).find("key 'big'"), std::string::npos) << read_text(out);

    write_in_place(global_json(), std::string(100000, '[') + std::string(100000, ']'));
    args.resize(args.size() - 2);
    write_in_place(base_toml(), "a = 1\n");
    e = wait_exit(spawn(args, out));
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(read_text(out).find("nested deeper"), std::string::npos) << read_text(out);
    EXPECT_FALSE(fs::exists(detail::segment_path(segment_)));
}

TEST_F(FileModeTest, SighupRereadsEveryFile) {
    const pid_t pid = start();
    const Client c = Client::open(segment_);
    ASSERT_EQ(::kill(pid, SIGHUP), 0);
    ASSERT_TRUE(eventually([&] { return log().find("reloading every file") != std::string::npos; }))
        << log();
    EXPECT_TRUE(alive(pid));
    EXPECT_EQ(state(c), SourceState::ok);
}

}  // namespace
}  // namespace yuxi::config
