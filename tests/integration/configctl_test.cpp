// yuxi-configctl end to end: segments made with the agent's SegmentWriter, read by the real
// binary in a child process; stdout, stderr and exit statuses of every read command.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/client.hpp"

extern char** environ;

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;
using nlohmann::json;

constexpr const char* kCtl = YUXI_CONFIGCTL;

struct Result {
    int status = -1;  // the exit status, or 128 + signal
    std::string out;
    std::string err;
};

// yuxi-configctl running in a child, its stdout and stderr read through pipes.
class Child {
  public:
    explicit Child(const std::vector<std::string>& args,
                   const std::vector<std::string>& env_extra = {}) {
        int out[2];
        int err[2];
        if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe failed");
        }
        std::vector<std::string> strings = {kCtl};
        strings.insert(strings.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& s : strings) {
            argv.push_back(s.data());
        }
        argv.push_back(nullptr);
        // The environment, less a segment name that would make tests depend on the caller's.
        std::vector<std::string> env_strings;
        for (char** e = environ; *e != nullptr; ++e) {
            if (std::strncmp(*e, "YUXI_CONFIG_SEGMENT=", 20) != 0) {
                env_strings.emplace_back(*e);
            }
        }
        env_strings.insert(env_strings.end(), env_extra.begin(), env_extra.end());
        std::vector<char*> envp;
        for (auto& s : env_strings) {
            envp.push_back(s.data());
        }
        envp.push_back(nullptr);

        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, out[1], 1);
        posix_spawn_file_actions_adddup2(&fa, err[1], 2);
        const int rc = posix_spawn(&pid_, kCtl, &fa, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&fa);
        ::close(out[1]);
        ::close(err[1]);
        out_fd_ = out[0];
        err_fd_ = err[0];
        if (rc != 0) {
            throw std::runtime_error(std::string("cannot start ") + kCtl + ": " +
                                     std::strerror(rc));
        }
    }

    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    ~Child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        close_fds();
    }

    // Reads until stderr contains `text` or `timeout` passes; returns whether it does.
    bool wait_for_stderr(std::string_view text,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return wait_for(result_.err, text, timeout);
    }

    bool wait_for_stdout(std::string_view text,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        return wait_for(result_.out, text, timeout);
    }

    // Reads both pipes to their end and reaps the child.
    Result finish() {
        while (pump(-1)) {
        }
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        result_.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return result_;
    }

  private:
    bool wait_for(const std::string& sink, std::string_view text,
                  std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (sink.find(text) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !pump(static_cast<int>(left.count()))) {
                return false;
            }
        }
        return true;
    }

    // One poll and the reads it allows; false once both pipes are at their end.
    bool pump(int timeout_ms) {
        pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
        if (out_fd_ < 0 && err_fd_ < 0) {
            return false;
        }
        if (::poll(fds, 2, timeout_ms) < 0) {
            return errno == EINTR;
        }
        std::string* sinks[2] = {&result_.out, &result_.err};
        int* fd_of[2] = {&out_fd_, &err_fd_};
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            char buf[4096];
            const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                sinks[i]->append(buf, static_cast<std::size_t>(n));
            } else {
                ::close(*fd_of[i]);
                *fd_of[i] = -1;
            }
        }
        return true;
    }

    void close_fds() {
        for (int* fd : {&out_fd_, &err_fd_}) {
            if (*fd >= 0) {
                ::close(*fd);
                *fd = -1;
            }
        }
    }

    pid_t pid_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    Result result_;
};

Result ctl(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    return Child(args, env).finish();
}

Change set(std::string key, std::string value, Namespace ns = Namespace::config,
           std::string category = "") {
    return Change{ns, std::move(key), std::move(value), std::move(category)};
}

Change del(std::string key) {
    return Change{Namespace::config, std::move(key), std::nullopt, ""};
}

class ConfigctlTest : public ::testing::Test {
  protected:
    void SetUp() override {
        name_ = std::string("yuxi-ctltest-") +
                ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
                std::to_string(::getpid());
        WriterOptions options;
        options.name = name_;
        options.min_arena_bytes = 1 << 16;
        options.min_slots = 64;
        const std::vector<Change> initial = {
            set("embed_model", R"("siliconflow/BAAI/bge-m3")", Namespace::config, "models"),
            set("top_k", "10"),
            set("enable_reranker", "true", Namespace::config, "features"),
            set("enable_web_search", "false", Namespace::config, "features"),
            set("quoted", R"("say \"hi\"\n中文")"),
            set("model_names", R"({"openai":{"name":"OpenAI","models":["gpt-4o","gpt-4"]}})"),
            set("global_metadata", R"({"databases":{"kb_1":{"name":"中医药知识图谱"}}})",
                Namespace::metadata),
            set("metadata_milvus", R"({"kb_2":{"files":{}}})", Namespace::metadata),
        };
        writer_.emplace(SegmentWriter::create(options, initial, 7));
    }

    void TearDown() override {
        writer_.reset();
        ::unlink(("/dev/shm/" + name_).c_str());
        ::unlink(("/dev/shm/" + name_ + ".lock").c_str());
        ::unlink(("/dev/shm/" + name_ + ".waiters").c_str());
    }

    // yuxi-configctl --segment <this test's segment> args...
    Result run(std::vector<std::string> args) {
        args.insert(args.begin(), {"--segment", name_});
        return ctl(args);
    }

    void apply(std::vector<Change> batch, std::uint64_t revision) {
        const auto r = writer_->apply(batch, revision);
        ASSERT_TRUE(r.rejected.empty());
        writer_->notify();
    }

    std::string name_;
    std::optional<SegmentWriter> writer_;
};

TEST_F(ConfigctlTest, GetPrintsTheJsonText) {
    const Result r = run({"get", "embed_model"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "\"siliconflow/BAAI/bge-m3\"\n");
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(run({"get", "top_k"}).out, "10\n");
    EXPECT_EQ(run({"get", "model_names"}).out,
              R"({"openai":{"name":"OpenAI","models":["gpt-4o","gpt-4"]}})"
              "\n");
}

TEST_F(ConfigctlTest, GetRawUnquotesStringsOnly) {
    Result r = run({"get", "embed_model", "--raw"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out, "siliconflow/BAAI/bge-m3\n");
    EXPECT_EQ(run({"get", "--raw", "quoted"}).out, "say \"hi\"\n中文\n");
    EXPECT_EQ(run({"get", "top_k", "--raw"}).out, "10\n");
    EXPECT_EQ(run({"get", "enable_reranker", "--raw"}).out, "true\n");
}

TEST_F(ConfigctlTest, GetJsonAndPretty) {
    Result r = run({"get", "embed_model", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["namespace"], "config");
    EXPECT_EQ(j["key"], "embed_model");
    EXPECT_EQ(j["value"], "siliconflow/BAAI/bge-m3");
    EXPECT_EQ(j["revision"], 7);
    EXPECT_EQ(j["category"], "models");

    r = run({"get", "model_names", "--pretty"});
    ASSERT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("\n  \"openai\": {\n"), std::string::npos) << r.out;
    EXPECT_EQ(json::parse(r.out)["openai"]["models"][1], "gpt-4");
}

TEST_F(ConfigctlTest, GetMetadata) {
    Result r = run({"get", "--metadata", "global_metadata"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json::parse(r.out)["databases"]["kb_1"]["name"], "中医药知识图谱");
    // The namespaces are apart: a metadata name is no config key.
    r = run({"get", "global_metadata"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("no config key 'global_metadata'"), std::string::npos) << r.err;
    EXPECT_EQ(run({"get", "embed_model", "--metadata"}).status, 1);
}

TEST_F(ConfigctlTest, GetAbsentKeyExitsOne) {
    const Result r = run({"get", "no_such_key"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find("no config key 'no_such_key'"), std::string::npos) << r.err;
    EXPECT_EQ(run({"get", "no_such_key", "--json"}).out, "");
}

TEST_F(ConfigctlTest, DeletedKeyIsNotFound) {
    apply({del("top_k")}, 8);
    EXPECT_EQ(run({"get", "top_k"}).status, 1);
    EXPECT_EQ(run({"list", "--prefix", "top"}).status, 1);
}

TEST_F(ConfigctlTest, SegmentFromEnvironmentAndOptionForms) {
    Result r = ctl({"get", "top_k"}, {"YUXI_CONFIG_SEGMENT=" + name_});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "10\n");
    EXPECT_EQ(ctl({"get", "top_k", "--segment=" + name_}).out, "10\n");
    EXPECT_EQ(ctl({"get", "top_k", "--segment", name_}).out, "10\n");
    // The option wins over the environment.
    r = ctl({"--segment", name_, "get", "top_k"}, {"YUXI_CONFIG_SEGMENT=yuxi-ctltest-nothing"});
    EXPECT_EQ(r.out, "10\n");
}

TEST_F(ConfigctlTest, ListKeys) {
    Result r = run({"list"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out,
              "embed_model\nenable_reranker\nenable_web_search\nmodel_names\nquoted\ntop_k\n");
    r = run({"list", "--prefix", "enable_"});
    EXPECT_EQ(r.out, "enable_reranker\nenable_web_search\n");
    EXPECT_EQ(run({"list", "--prefix=enable_"}).out, r.out);
    EXPECT_EQ(run({"list", "--metadata"}).out, "global_metadata\nmetadata_milvus\n");

    r = run({"list", "--json", "--metadata"});
    ASSERT_EQ(r.status, 0);
    EXPECT_EQ(json::parse(r.out), json::parse(R"(["global_metadata","metadata_milvus"])"));

    r = run({"list", "--prefix", "zzz"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(r.out, "");
    r = run({"list", "--prefix", "zzz", "--json"});
    EXPECT_EQ(r.status, 1);
    EXPECT_EQ(json::parse(r.out), json::array());
}

TEST_F(ConfigctlTest, DumpText) {
    const Result r = run({"dump"});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out.rfind("# segment " + name_ + ", revision 7\n[config]\n", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("\nembed_model = \"siliconflow/BAAI/bge-m3\"\n"), std::string::npos);
    EXPECT_NE(r.out.find("\n[metadata]\nglobal_metadata = {"), std::string::npos);
}

TEST_F(ConfigctlTest, DumpJsonHoldsBothNamespacesAtOneRevision) {
    apply({set("top_k", "20")}, 8);
    for (const char* extra : {"", "--pretty"}) {
        std::vector<std::string> args = {"dump", "--json"};
        if (*extra != '\0') {
            args.emplace_back(extra);
        }
        const Result r = run(args);
        ASSERT_EQ(r.status, 0) << r.err;
        const json j = json::parse(r.out);
        EXPECT_EQ(j["revision"], 8);
        EXPECT_EQ(j["config"].size(), 6u);
        EXPECT_EQ(j["config"]["top_k"], 20);
        EXPECT_EQ(j["config"]["quoted"], "say \"hi\"\n中文");
        EXPECT_EQ(j["config"]["model_names"]["openai"]["name"], "OpenAI");
        EXPECT_EQ(j["metadata"].size(), 2u);
        EXPECT_EQ(j["metadata"]["global_metadata"]["databases"]["kb_1"]["name"], "中医药知识图谱");
    }
}

TEST_F(ConfigctlTest, WatchPrintsChangesMadeByTheWriter) {
    Child watch(
        {"--segment", name_, "watch", "embed_model", "top_k", "--timeout", "20", "--count", "3"});
    ASSERT_TRUE(watch.wait_for_stderr("from revision 7"));
    // Each change waits for the line of the one before: changes published faster than the
    // watcher reads them are printed together, at the newest revision.
    apply({set("embed_model", R"("local/bge-large")")}, 8);
    ASSERT_TRUE(watch.wait_for_stdout("\n"));
    apply({set("enable_reranker", "false")}, 9);  // not watched: prints nothing
    apply({del("top_k")}, 10);
    ASSERT_TRUE(watch.wait_for_stdout("(deleted)\n"));
    apply({set("top_k", "5")}, 11);
    const Result r = watch.finish();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "8 embed_model \"local/bge-large\"\n10 top_k (deleted)\n11 top_k 5\n");
}

TEST_F(ConfigctlTest, WatchJsonAndRaw) {
    {
        Child watch({"--segment", name_, "watch", "embed_model", "--json", "--count", "2",
                     "--timeout", "20"});
        ASSERT_TRUE(watch.wait_for_stderr("watching"));
        apply({set("embed_model", R"("a")")}, 8);
        ASSERT_TRUE(watch.wait_for_stdout("\n"));
        apply({del("embed_model")}, 9);
        const Result r = watch.finish();
        ASSERT_EQ(r.status, 0) << r.err;
        std::istringstream lines(r.out);
        std::string line;
        ASSERT_TRUE(std::getline(lines, line));
        json j = json::parse(line);
        EXPECT_EQ(j["revision"], 8);
        EXPECT_EQ(j["key"], "embed_model");
        EXPECT_EQ(j["namespace"], "config");
        EXPECT_EQ(j["value"], "a");
        EXPECT_EQ(j["deleted"], false);
        ASSERT_TRUE(std::getline(lines, line));
        j = json::parse(line);
        EXPECT_EQ(j["revision"], 9);
        EXPECT_TRUE(j["value"].is_null());
        EXPECT_EQ(j["deleted"], true);
    }
    Child watch({"--segment", name_, "watch", "global_metadata", "--metadata", "--raw", "--count",
                 "1", "--timeout", "20"});
    ASSERT_TRUE(watch.wait_for_stderr("watching"));
    apply({set("global_metadata", R"("plain")", Namespace::metadata)}, 10);
    const Result r = watch.finish();
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.out, "10 global_metadata plain\n");
}

TEST_F(ConfigctlTest, WatchTimesOutWithoutChange) {
    const auto start = std::chrono::steady_clock::now();
    const Result r = run({"watch", "embed_model", "--timeout", "0.3"});
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_GE(took, std::chrono::milliseconds(300));
    EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(ConfigctlTest, StatusAndHealth) {
    Result r = run({"status", "--json"});
    ASSERT_EQ(r.status, 0) << r.err;
    json j = json::parse(r.out);
    EXPECT_EQ(j["segment"], name_);
    EXPECT_EQ(j["revision"], 7);
    EXPECT_EQ(j["writer_alive"], true);
    EXPECT_EQ(j["writer_pid"], ::getpid());
    EXPECT_EQ(j["entries"], 8);
    EXPECT_GT(j["segment_bytes"].get<std::uint64_t>(), 0u);
    EXPECT_EQ(j["source_state"], "starting");
    EXPECT_EQ(j["healthy"], false);
    EXPECT_LT(j["heartbeat_age_ms"].get<std::int64_t>(), 60000);

    // Starting is not healthy yet; ok with a fresh heartbeat is.
    EXPECT_EQ(run({"health"}).status, 1);
    writer_->set_source_state(SourceState::ok);
    writer_->heartbeat();
    r = run({"health", "--json"});
    EXPECT_EQ(r.status, 0) << r.out;
    j = json::parse(r.out);
    EXPECT_EQ(j["source_state"], "ok");
    EXPECT_EQ(j["healthy"], true);

    r = run({"status"});
    EXPECT_EQ(r.status, 0);
    for (const char* row : {"segment", "revision", "heartbeat age", "writer alive", "source state",
                            "entries", "segment bytes"}) {
        EXPECT_NE(r.out.find(row), std::string::npos) << row << " in\n" << r.out;
    }
    EXPECT_NE(r.out.find("writer alive    yes (pid " + std::to_string(::getpid())),
              std::string::npos)
        << r.out;

    // A heartbeat older than --max-age is not fresh.
    ::usleep(50000);
    EXPECT_EQ(run({"health", "--max-age", "0.01"}).status, 1);

    // The writer gone (its lock released), readers still read, and health says so.
    writer_.reset();
    r = run({"status", "--json"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(json::parse(r.out)["writer_alive"], false);
    EXPECT_EQ(run({"health"}).status, 1);
    EXPECT_EQ(run({"get", "top_k"}).out, "10\n");
}

TEST(ConfigctlErrors, AbsentSegmentExitsTwo) {
    const std::string name = "yuxi-ctltest-absent-" + std::to_string(::getpid());
    for (const std::vector<std::string>& cmd : {std::vector<std::string>{"get", "x"},
                                                {"list"},
                                                {"dump", "--json"},
                                                {"watch", "x"},
                                                {"status"},
                                                {"health", "--json"}}) {
        std::vector<std::string> args = {"--segment", name};
        args.insert(args.end(), cmd.begin(), cmd.end());
        const Result r = ctl(args);
        EXPECT_EQ(r.status, 2) << cmd[0];
        EXPECT_EQ(r.out, "");
        EXPECT_NE(r.err.find("no segment '" + name + "'"), std::string::npos) << r.err;
    }
}

TEST(ConfigctlErrors, DamagedSegmentExitsTwo) {
    const std::string name = "yuxi-ctltest-garbage-" + std::to_string(::getpid());
    {
        std::ofstream f("/dev/shm/" + name);
        f << std::string(8192, 'x');
    }
    const Result r = ctl({"--segment", name, "get", "x"});
    ::unlink(("/dev/shm/" + name).c_str());
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("segment '" + name + "'"), std::string::npos) << r.err;
    EXPECT_EQ(ctl({"--segment", "a/b", "list"}).status, 2);
}

TEST(ConfigctlErrors, BadUsageExitsTwo) {
    const std::vector<std::vector<std::string>> bad = {
        {},
        {"frobnicate"},
        {"get"},
        {"get", "a", "b"},
        {"get", "a", "--nope"},
        {"--json", "list"},  // command options go after the command
        {"get", "a", "--raw", "--json"},
        {"list", "extra"},
        {"list", "--prefix"},
        {"list", "--json=yes"},
        {"dump", "--pretty"},
        {"watch"},
        {"watch", "a", "--timeout", "soon"},
        {"watch", "a", "--timeout", "-1"},
        {"watch", "a", "--count", "0"},
        {"health", "--max-age", "x"},
        {"help", "nothing"},
    };
    for (const auto& args : bad) {
        const Result r = ctl(args);
        std::string line;
        for (const auto& a : args) {
            line += a + " ";
        }
        EXPECT_EQ(r.status, 2) << line;
        EXPECT_EQ(r.out, "") << line;
        EXPECT_NE(r.err.find("yuxi-configctl"), std::string::npos) << line << ": " << r.err;
    }
    // Usage is checked before the segment is opened.
    EXPECT_EQ(ctl({"--segment", "yuxi-ctltest-absent", "get"}).err.find("no segment"),
              std::string::npos);
}

// The database commands (admin_*_test.cpp, label `admin`) say where the database comes
// from when there is none, and bad usage is still exit 2 before any connection.
TEST(ConfigctlErrors, DatabaseCommandsNeedADatabaseUrl) {
    const std::vector<std::string> no_url = {"DATABASE_URL=", "DATABASE_URL_SYNC="};
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"set", "embed_model", "\"x\"", "--if-revision", "3"},
             {"delete", "embed_model"},
             {"history", "embed_model"},
             {"rollback", "embed_model", "--to-revision", "3"},
             {"schema", "apply"},
             {"log", "status"}}) {
        const Result r = ctl(args, no_url);
        EXPECT_EQ(r.status, 2) << args[0];
        EXPECT_EQ(r.out, "");
        EXPECT_NE(r.err.find("--database-url URL or set DATABASE_URL"), std::string::npos) << r.err;
    }
    for (const std::vector<std::string>& args :
         std::vector<std::vector<std::string>>{{"schema", "embed_model"},
                                               {"rollback", "embed_model"},
                                               {"set", "embed_model"},
                                               {"set", "k", "1", "--if-revision", "x"},
                                               {"set", "k", "1", "--timeout", "3"},
                                               {"log", "trim"},
                                               {"migrate"},
                                               {"migrate", "--metadata", "nopath"},
                                               {"lock", "name"},
                                               {"agents", "--stale-after", "soon"}}) {
        const Result r = ctl(args, no_url);
        EXPECT_EQ(r.status, 2) << args[0] << " " << args[1 % args.size()];
        EXPECT_EQ(r.err.find("DATABASE_URL"), std::string::npos) << r.err;
    }
}

TEST(ConfigctlHelp, HelpAndVersion) {
    Result r = ctl({"--help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out.rfind("Usage: yuxi-configctl", 0), 0u);
    for (const char* cmd : {"get", "list", "dump", "watch", "status", "health"}) {
        EXPECT_NE(r.out.find("\n  " + std::string(cmd)), std::string::npos) << cmd;
    }
    EXPECT_EQ(ctl({"-h"}).out, r.out);
    EXPECT_EQ(ctl({"help"}).out, r.out);

    r = ctl({"get", "--help"});
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("--raw"), std::string::npos);
    EXPECT_EQ(ctl({"help", "watch"}).out, ctl({"watch", "--help"}).out);

    r = ctl({"--version"});
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out.rfind("yuxi-configctl ", 0), 0u);

    // Without a command: the help on stderr, and a usage error.
    r = ctl({});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("Usage: yuxi-configctl"), std::string::npos);
}

}  // namespace
}  // namespace yuxi::config
