// yuxi-configctl's Redis commands against a real Redis: lock NAME -- CMD, agents, and
// set --wait-all with simulated agents written straight into the hash yuxi:config:agents.
#include "admin_test_support.hpp"
#include "core/signing.hpp"
#include "lock/redis_connection.hpp"
#include "redis_test_support.hpp"
#include "yuxi/config/lock.hpp"

namespace yuxi::config::test {
namespace {

using nlohmann::json;

// `document` signed as an agent of the fleet signs it (or with another key).
std::string sealed(const std::string& document, const char* key = kTestSigningKey) {
    const KeyRing ring(*SigningKey::from_base64(key, "test key"));
    return ring.sign(document);
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Redis from YUXI_TEST_REDIS_HOST/PORT; each test on a database of its own, so that the
// agents' hash of one test (and of the agent's own tests, on database 0) is not another's.
class RedisTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto host = env_var("YUXI_TEST_REDIS_HOST");
        const auto port = env_var("YUXI_TEST_REDIS_PORT");
        if (!host || !port) {
            GTEST_SKIP() << "YUXI_TEST_REDIS_HOST/PORT are not set (scripts/test-servers)";
        }
        endpoint_.host = *host;
        endpoint_.port = static_cast<std::uint16_t>(std::stoi(*port));
        endpoint_.db = redis_db();
        redis_.emplace(endpoint_);
    }

    virtual int redis_db() const { return 11; }

    std::vector<std::string> redis_env() const {
        return {"REDIS_HOST=" + endpoint_.host, "REDIS_PORT=" + std::to_string(endpoint_.port),
                "REDIS_DB=" + std::to_string(endpoint_.db)};
    }

    // An agent's report, as the agent writes it.
    void report(const std::string& pod, std::uint64_t revision, std::int64_t heartbeat_ms,
                const std::string& role = "follower") {
        const json v = {{"v", 1},
                        {"revision", revision},
                        {"heartbeat_ms", heartbeat_ms},
                        {"segment", "yuxi-config"},
                        {"role", role},
                        {"state", "ok"}};
        (void)redis_->command({"HSET", "yuxi:config:agents", pod, sealed(v.dump())});
    }

    RedisEndpoint endpoint_;
    std::optional<detail::RedisConnection> redis_;
};

using LockCommandTest = RedisTest;

TEST_F(LockCommandTest, RunsTheCommandWithAFencingTokenAndPassesItsStatus) {
    CtlResult r = ctl({"lock", "job-1", "--", "sh", "-c",
                       "echo \"$YUXI_LOCK_NAME $YUXI_LOCK_FENCING_TOKEN\"; exit 7"},
                      redis_env());
    EXPECT_EQ(r.status, 7) << describe(r);
    std::istringstream in(r.out);
    std::string name;
    std::uint64_t token = 0;
    in >> name >> token;
    EXPECT_EQ(name, "job-1");
    EXPECT_GT(token, 0u);
    // Released afterwards.
    EXPECT_EQ(redis_->command_integer({"EXISTS", "yuxi:lock:job-1"}), 0);

    r = ctl({"lock", "job-1", "--", "sh", "-c", "echo $YUXI_LOCK_FENCING_TOKEN"}, redis_env());
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_GT(std::stoull(r.out), token);  // tokens only grow

    r = ctl({"lock", "job-1", "--", "sh", "-c", "kill -TERM $$"}, redis_env());
    EXPECT_EQ(r.status, 128 + SIGTERM) << describe(r);
    r = ctl({"lock", "job-1", "--", "/nonexistent/command"}, redis_env());
    EXPECT_EQ(r.status, 127) << describe(r);
    EXPECT_EQ(ctl({"lock", "job-1"}, redis_env()).status, 2);  // no command
}

TEST_F(LockCommandTest, ASecondHolderWaitsThenGivesUp) {
    Ctl holder({"lock", "job-2", "--ttl", "5", "--", "sleep", "1.5"}, redis_env());
    ASSERT_TRUE(eventually([&] {
        return redis_->command_integer({"EXISTS", "yuxi:lock:job-2"}) == 1;
    }));
    CtlResult r = ctl({"lock", "job-2", "--wait", "0.2", "--", "true"}, redis_env());
    EXPECT_EQ(r.status, 75) << describe(r);
    EXPECT_NE(r.err.find("held by somebody else"), std::string::npos) << r.err;
    EXPECT_LT(r.took, 1500ms);
    // Waiting long enough, it runs after the holder.
    r = ctl({"lock", "job-2", "--wait", "10", "--", "true"}, redis_env());
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(holder.finish().status, 0);
}

TEST_F(LockCommandTest, ALostLockStopsTheCommand) {
    Ctl holder({"lock", "job-3", "--ttl", "0.6", "--", "sleep", "30"}, redis_env());
    ASSERT_TRUE(eventually([&] {
        return redis_->command_integer({"EXISTS", "yuxi:lock:job-3"}) == 1;
    }));
    (void)redis_->command({"DEL", "yuxi:lock:job-3"});
    const CtlResult r = holder.finish();
    EXPECT_EQ(r.status, 6) << describe(r);
    EXPECT_NE(r.err.find("lost lock 'job-3' (gone)"), std::string::npos) << r.err;
    EXPECT_LT(r.took, 10s);
}

TEST_F(LockCommandTest, UnreachableRedis) {
    const CtlResult r =
        ctl({"lock", "job-4", "--redis-port", std::to_string(free_port()), "--", "true"},
            {"REDIS_HOST=127.0.0.1", "REDIS_PASSWORD=s3cretpw"});
    EXPECT_EQ(r.status, 4) << describe(r);
    EXPECT_NE(r.err.find("cannot use Redis at 127.0.0.1"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("s3cretpw"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------
// agents and --wait-all: a database of its own too, for the revisions.

class AgentsTest : public RedisTest {
  protected:
    void SetUp() override {
        RedisTest::SetUp();
        if (IsSkipped()) {
            return;
        }
        const auto server = env_var("YUXI_TEST_DATABASE_URL");
        if (!server) {
            GTEST_SKIP() << "YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)";
        }
        db_.emplace(*server);
        (void)redis_->command({"DEL", "yuxi:config:agents"});
    }
    int redis_db() const override { return 12; }

    CtlResult run(std::vector<std::string> args, bool with_db = true) {
        std::vector<std::string> env = redis_env();
        env.push_back(std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey);
        if (with_db) {
            env.push_back("DATABASE_URL=" + db_->url());
        }
        return ctl(args, env);
    }

    std::optional<TestDatabase> db_;
};

TEST_F(AgentsTest, ListsAgentsWithTheirLag) {
    CtlResult r = run({"agents"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("0 agent(s), 0 live"), std::string::npos) << r.out;

    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(run({"set", "k", std::to_string(i)}).status, 0);
    }
    report("pod-a", 3, now_ms(), "relay");
    report("pod-b", 1, now_ms() - 2000);
    report("pod-old", 1, now_ms() - 60000);
    (void)redis_->command({"HSET", "yuxi:config:agents", "pod-junk", "not json"});

    r = run({"agents", "--json"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.err.find("ignoring yuxi:config:agents field \"pod-junk\""), std::string::npos)
        << r.err;
    const json j = json::parse(r.out);
    EXPECT_EQ(j["reference"], "database");
    EXPECT_EQ(j["reference_revision"], 3);
    ASSERT_EQ(j["agents"].size(), 3u);
    EXPECT_EQ(j["agents"][0]["pod"], "pod-a");
    EXPECT_EQ(j["agents"][0]["role"], "relay");
    EXPECT_EQ(j["agents"][0]["lag"], 0);
    EXPECT_EQ(j["agents"][1]["lag"], 2);
    EXPECT_GE(j["agents"][1]["heartbeat_age_ms"].get<int>(), 2000);
    EXPECT_EQ(j["agents"][1]["live"], true);
    EXPECT_EQ(j["agents"][2]["live"], false);

    // Without the database, lag is against the highest revision reported.
    r = run({"agents", "--stale-after", "1"}, false);
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("3 agent(s), 1 live; lag against the highest revision reported 3"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("pod-b"), std::string::npos);
}

// Reports nobody signed with the fleet's key (written by anyone who can reach Redis) are
// neither listed nor counted; without a key the commands refuse to trust any report.
TEST_F(AgentsTest, ForgedReportsAreNeitherListedNorCounted) {
    ASSERT_EQ(run({"set", "k", "1"}).status, 0);
    report("pod-real", 0, now_ms());
    const json forged = {{"v", 1},         {"revision", 1000},   {"heartbeat_ms", now_ms()},
                         {"segment", "x"}, {"role", "follower"}, {"state", "ok"}};
    (void)redis_->command({"HSET", "yuxi:config:agents", "pod-unsigned", forged.dump()});
    (void)redis_->command(
        {"HSET", "yuxi:config:agents", "pod-other-key", sealed(forged.dump(), kOtherSigningKey)});
    CtlResult r = run({"agents", "--json"});
    ASSERT_EQ(r.status, 0) << describe(r);
    const json j = json::parse(r.out);
    ASSERT_EQ(j["agents"].size(), 1u) << r.out;
    EXPECT_EQ(j["agents"][0]["pod"], "pod-real");
    EXPECT_NE(r.err.find("\"pod-unsigned\": not signed"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("\"pod-other-key\": unknown key id"), std::string::npos) << r.err;
    // The forged reports say revision 1000: were they counted, --wait-all would not wait.
    r = run({"set", "k", "2", "--wait-all", "--timeout", "0.5"});
    EXPECT_EQ(r.status, 5) << describe(r);
    EXPECT_NE(r.err.find("pod-real"), std::string::npos) << r.err;
    // No key: nothing to verify with.
    r = ctl({"agents"}, redis_env());
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_NE(r.err.find("YUXI_CONFIG_SIGNING_KEY"), std::string::npos) << r.err;
    // A fleet that runs unsigned: --insecure-redis takes the reports as they are.
    std::vector<std::string> env = redis_env();
    env.push_back("DATABASE_URL=" + db_->url());
    r = ctl({"agents", "--json", "--insecure-redis"}, env);
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("pod-unsigned"), std::string::npos) << r.out;
}

TEST(KeygenTest, PrintsAFreshKeyTheAgentAccepts) {
    const CtlResult a = ctl({"keygen"}, {});
    const CtlResult b = ctl({"keygen"}, {});
    ASSERT_EQ(a.status, 0) << describe(a);
    EXPECT_NE(a.out, b.out);
    const auto key = SigningKey::from_base64(a.out, "keygen");
    ASSERT_TRUE(key) << key.reason();
    EXPECT_EQ(key->secret().size(), 32u);
}

class WaitAllTest : public AgentsTest {
  protected:
    int redis_db() const override { return 13; }
};

TEST_F(WaitAllTest, ReturnsOnceEveryLiveAgentHasTheRevision) {
    std::atomic<std::uint64_t> b_revision{0};
    std::atomic<bool> stop{false};
    // pod-a is ahead of everything; pod-b lags until told; pod-old's heartbeat is stale.
    std::thread agents([&] {
        detail::RedisConnection redis(endpoint_);
        while (!stop) {
            for (const auto& [pod, rev] : {std::pair<std::string, std::uint64_t>{"pod-a", 1000},
                                           {"pod-b", b_revision.load()}}) {
                const json v = {{"v", 1},
                                {"revision", rev},
                                {"heartbeat_ms", now_ms()},
                                {"segment", "yuxi-config"},
                                {"role", "follower"},
                                {"state", "ok"}};
                (void)redis.command({"HSET", "yuxi:config:agents", pod, sealed(v.dump())});
            }
            std::this_thread::sleep_for(50ms);
        }
    });
    report("pod-old", 0, now_ms() - 60000);
    std::this_thread::sleep_for(100ms);

    const auto started = std::chrono::steady_clock::now();
    std::thread catch_up([&] {
        std::this_thread::sleep_for(500ms);
        b_revision = 1;
    });
    CtlResult r = run({"set", "k", "1", "--wait-all"});
    const auto took = std::chrono::steady_clock::now() - started;
    catch_up.join();
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_GE(took, 450ms);  // not before pod-b had revision 1

    // pod-b stays behind: a timeout that names it, and only it.
    r = run({"set", "k", "2", "--wait-all", "--timeout", "0.5"});
    EXPECT_EQ(r.status, 5) << describe(r);
    EXPECT_NE(r.err.find("pod-b (revision 1"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("pod-a"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("pod-old"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the write is committed (revision 2)"), std::string::npos) << r.err;
    stop = true;
    agents.join();

    // Nobody live: nothing to wait for.
    (void)redis_->command({"DEL", "yuxi:config:agents"});
    report("pod-old", 0, now_ms() - 60000);
    r = run({"delete", "k", "--wait-all", "--timeout", "0.5"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.err.find("no live agent"), std::string::npos) << r.err;

    // Redis unreachable: refused before the write.
    Pg pg(db_->url());
    const std::uint64_t before = db_revision(pg);
    r = run({"set", "k", "3", "--wait-all", "--redis-port", std::to_string(free_port())});
    EXPECT_EQ(r.status, 4) << describe(r);
    EXPECT_EQ(db_revision(pg), before);
}

}  // namespace
}  // namespace yuxi::config::test
