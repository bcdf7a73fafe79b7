// High availability on Redis Sentinel (label `ha`): a private primary, a replica and three
// Sentinels; agents that know only the Sentinels, a writer storm on PostgreSQL, and the
// primary SIGKILLed (also with the Sentinel the agents asked first): the relay and its
// followers move to the promoted replica and every segment converges on the database,
// each agent's revisions only ever increasing. Locks across the same failover keep their
// fencing tokens strictly increasing and never share one.
#include <regex>
#include <sstream>

#include "database_test_support.hpp"
#include "ha_servers.hpp"

namespace yuxi::config::test {
namespace {

std::vector<std::uint64_t> published_revisions(const std::string& log) {
    static const std::regex re("published revision ([0-9]+)");
    std::vector<std::uint64_t> out;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
        out.push_back(std::stoull((*it)[1].str()));
    }
    return out;
}

class SentinelHaTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        ASSERT_TRUE(cluster_.start()) << "a Redis primary, replica and 3 Sentinels";
        dir_ = temp_dir("sentinel-ha");
        tag_ = std::to_string(::getpid()) + "-" +
               std::to_string(::testing::UnitTest::GetInstance()->random_seed());
    }
    void TearDown() override {
        for (std::size_t i = 0; i < agents_.size(); ++i) {
            agents_[i]->kill();
            if (HasFailure()) {
                const std::string log = agents_[i]->log();
                std::cerr << "--- agent " << i << " log (last 8000 bytes):\n"
                          << log.substr(log.size() > 8000 ? log.size() - 8000 : 0);
            }
            unlink_segment(segment(static_cast<int>(i)));
        }
    }

    std::string segment(int i) const {
        return "yuxi-test-sentinel-" + std::to_string(i) + "-" + tag_;
    }

    std::vector<std::string> sentinel_env() const {
        return {"REDIS_SENTINELS=" + cluster_.sentinel_list(),
                "REDIS_SENTINEL_MASTER=" + std::string(SentinelCluster::kMaster),
                std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey};
    }

    // Waits for the Sentinels to promote the replica.
    void wait_failover() {
        ASSERT_TRUE(
            eventually([&] { return cluster_.master_port() == cluster_.replica().port(); }, 20s))
            << "the Sentinels did not promote the replica";
    }

    SentinelCluster cluster_;
    fs::path dir_;
    std::string tag_;
    std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_P(SentinelHaTest, FleetFollowsAFailoverUnderAWriterStorm) {
    const auto url = env_var("YUXI_TEST_DATABASE_URL");
    if (!url) {
        GTEST_SKIP() << "YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)";
    }
    const bool kill_first_sentinel = GetParam();
    TestDatabase db(*url);
    Pg pg(db.url());
    pg.exec("INSERT INTO system_configs (key, value, category) VALUES ('base', '1', 'basic')");
    constexpr int kAgents = 3;
    for (int i = 0; i < kAgents; ++i) {
        agents_.push_back(std::make_unique<Agent>());
        std::vector<std::string> env = sentinel_env();
        env.insert(env.end(), {"POD_NAME=pod" + std::to_string(i), "YUXI_CONFIG_RELAY_LEASE_TTL=2s",
                               "YUXI_CONFIG_SAFETY_POLL=1s"});
        agents_.back()->start(db.url(), segment(i), dir_ / ("agent" + std::to_string(i) + ".log"),
                              {}, env);
    }
    std::vector<Client> clients;
    for (int i = 0; i < kAgents; ++i) {
        auto c = open_when_ready(segment(i));
        ASSERT_TRUE(c) << "agent " << i;
        clients.push_back(std::move(*c));
    }
    for (const Client& c : clients) {
        expect_converged(c, pg);
    }
    // Everyone found the primary through the Sentinels.
    for (const auto& a : agents_) {
        ASSERT_TRUE(eventually(
            [&] {
                return a->log_contains("connected to Redis at 127.0.0.1:" +
                                       std::to_string(cluster_.primary().port()));
            },
            10s));
    }

    WriteStorm storm(db.url(), 2, 25);
    std::this_thread::sleep_for(1s);
    cluster_.primary().kill();
    if (kill_first_sentinel) {
        cluster_.sentinel(0).kill();
    }
    wait_failover();
    std::this_thread::sleep_for(2s);  // the storm goes on over the new primary
    storm.finish();
    ASSERT_GT(storm.commits(), 0u);

    for (const Client& c : clients) {
        expect_converged(c, pg, 30s);
    }
    const std::string moved = "127.0.0.1:" + std::to_string(cluster_.replica().port());
    for (std::size_t i = 0; i < agents_.size(); ++i) {
        EXPECT_TRUE(agents_[i]->log_contains("moving to Redis at " + moved)) << "agent " << i;
        const auto revisions = published_revisions(agents_[i]->log());
        for (std::size_t k = 1; k < revisions.size(); ++k) {
            ASSERT_LT(revisions[k - 1], revisions[k])
                << "agent " << i << " published revision " << revisions[k] << " after "
                << revisions[k - 1];
        }
        if (kill_first_sentinel) {
            EXPECT_TRUE(agents_[i]->log_contains("asking 127.0.0.1:")) << "agent " << i;
        }
    }
    // yuxi-configctl finds the new primary through the Sentinels too.
    const std::string listed =
        shell_output(std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey + " " +
                     YUXI_CONFIGCTL_BIN + " agents --redis-sentinels " + cluster_.sentinel_list() +
                     " --redis-sentinel-master ha 2>&1");
    for (int i = 0; i < kAgents; ++i) {
        EXPECT_NE(listed.find("pod" + std::to_string(i)), std::string::npos) << listed;
    }
    // Exactly one relay after the failover, on the new primary.
    RedisEndpoint e = cluster_.replica().endpoint();
    detail::RedisConnection c(e);
    EXPECT_EQ(c.command_integer({"EXISTS", "yuxi:config:relay"}), 1);
}

std::string failover_name(const ::testing::TestParamInfo<bool>& p) {
    return p.param ? "AlsoTheFirstSentinelKilled" : "PrimaryKilled";
}

INSTANTIATE_TEST_SUITE_P(Failover, SentinelHaTest, ::testing::Values(false, true), failover_name);

TEST_F(SentinelHaTest, LocksKeepStrictlyIncreasingTokensAcrossAFailover) {
    const fs::path file = dir_ / "holders.txt";
    const std::string name = "ha_lock_" + tag_;
    std::vector<pid_t> holders;
    std::vector<std::string> env = sentinel_env();
    env.push_back("REDIS_MIN_REPLICAS=1");
    const fs::path log = dir_ / "holders.log";
    for (int i = 0; i < 4; ++i) {
        holders.push_back(
            spawn_process({YUXI_LOCK_HOLDER_BIN, "storm", name, "3000", "10", file.string()},
                          child_environment({"REDIS_"}, env), log, LogMode::append));
        ASSERT_GT(holders.back(), 0);
    }
    std::this_thread::sleep_for(1500ms);
    cluster_.primary().kill();
    wait_failover();
    { std::ofstream(file, std::ios::app) << "failover-done\n"; }
    // A new replica of the new primary (as an operator or Kubernetes would bring one
    // back), so that WAIT (min_replicas 1) can succeed again.
    PrivateRedis rejoined;
    ASSERT_TRUE(
        rejoined.start(0, {"--replicaof", "127.0.0.1", std::to_string(cluster_.replica().port())}));
    ASSERT_TRUE(eventually(
        [&] { return SentinelCluster::connected_replicas(cluster_.replica().port()) >= 1; }, 20s));
    for (const pid_t pid : holders) {
        const Exit e = wait_exit(pid, 30s);
        ASSERT_TRUE(e.exited) << read_text(log);
        EXPECT_EQ(e.code, 0) << read_text(log);
    }

    std::istringstream lines(read_text(file));
    std::string line;
    std::uint64_t last = 0;
    std::string open;
    int after_failover = 0;
    bool failover_seen = false;
    int line_no = 0;
    while (std::getline(lines, line)) {
        ++line_no;
        if (line == "failover-done") {
            failover_seen = true;
            continue;
        }
        std::istringstream f(line);
        std::string what, pid, fence;
        f >> what >> pid >> fence;
        if (what == "start") {
            ASSERT_TRUE(open.empty()) << "line " << line_no << ": two holders at once";
            const std::uint64_t v = std::stoull(fence);
            ASSERT_GT(v, last) << "line " << line_no << ": the fencing token did not increase";
            last = v;
            open = pid + " " + fence;
            after_failover += failover_seen ? 1 : 0;
        } else {
            ASSERT_EQ(what, "end") << "line " << line_no;
            ASSERT_EQ(pid + " " + fence, open) << "line " << line_no;
            open.clear();
        }
    }
    EXPECT_TRUE(failover_seen);
    EXPECT_GT(after_failover, 0) << "no acquisition after the failover: " << read_text(log);
}

TEST_F(SentinelHaTest, ALockNoReplicaAcknowledgedIsReleasedAndRefused) {
    RedisEndpoint e;
    e.sentinels = {cluster_.sentinel_list()};
    e.sentinel_master = SentinelCluster::kMaster;
    // A loaded CI machine can take longer than 200 ms to carry one acknowledgement: the
    // first acquisition only shows that a live replica suffices, so it waits longer.
    e.replica_timeout = 5s;
    {
        DistributedLock lock(e, "ha_wait_" + tag_, 5s);
        ASSERT_TRUE(lock.try_acquire());  // the replica acknowledges
        EXPECT_GT(lock.fencing_token(), 0u);
        EXPECT_TRUE(lock.release());
    }
    e.replica_timeout = 200ms;
    cluster_.replica().kill();
    ASSERT_TRUE(eventually(
        [&] { return SentinelCluster::connected_replicas(cluster_.primary().port()) == 0; }, 10s));
    DistributedLock lock(e, "ha_wait_" + tag_, 5s);
    try {
        (void)lock.try_acquire();
        ADD_FAILURE() << "acquired with no replica to acknowledge it";
    } catch (const LockError& x) {
        EXPECT_EQ(x.kind(), LockError::Kind::replication) << x.what();
    }
    EXPECT_FALSE(lock.held());
    // Released again at once: the key is not left behind for its TTL.
    detail::RedisConnection c(cluster_.primary().endpoint());
    EXPECT_EQ(c.command_integer({"EXISTS", "yuxi:lock:ha_wait_" + tag_}), 0);
    // Without the requirement, the same lock is taken.
    e.min_replicas = 0;
    DistributedLock relaxed(e, "ha_wait_" + tag_, 5s);
    EXPECT_TRUE(relaxed.try_acquire());
}

}  // namespace
}  // namespace yuxi::config::test
