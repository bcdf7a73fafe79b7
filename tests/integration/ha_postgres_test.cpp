// High availability on PostgreSQL (label `ha`): a private primary and a streaming standby
// (pg_basebackup -R), agents on a multi-host URL. A promotion is followed; a failover that
// lost commits the agents had applied is detected, reported and dropped, by direct agents
// and by a relay's fleet alike, even when the new primary reuses the lost revision number.
#include <arpa/inet.h>

#include "database_test_support.hpp"
#include "ha_servers.hpp"

namespace yuxi::config::test {
namespace {

std::string value_in(const Client& c, const std::string& key) {
    const Snapshot s = c.snapshot();
    const auto v = s.get(key);
    return v ? std::string(*v) : std::string("<absent>");
}

class PostgresHaTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (const std::string why = PrivateServer::unavailable(); !why.empty()) {
            GTEST_SKIP() << why;
        }
        ASSERT_TRUE(primary_.init_primary()) << primary_.log();
        {
            Pg pg(primary_.url());
            apply_schema(pg);
            pg.exec(
                "INSERT INTO system_configs (key, value, category) VALUES "
                "('embed_model', '\"w0\"', 'basic'), ('fast_model', '\"default\"', 'basic')");
        }
        ASSERT_TRUE(standby_.init_standby(primary_));
        dir_ = temp_dir("pgha-agents");
        tag_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
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
        return unique_segment("ha-" + std::to_string(i) + "-" + tag_.substr(0, 8));
    }

    // Agent i on the multi-host URL; with `redis_port`, a member of a relay's fleet.
    Agent& start_agent(int i, std::uint16_t redis_port = 0) {
        agents_.push_back(std::make_unique<Agent>());
        http_.push_back(free_port());
        std::vector<std::string> env = {"POD_NAME=pod" + std::to_string(i),
                                        "YUXI_CONFIG_SAFETY_POLL=1s"};
        if (redis_port != 0) {
            env.insert(env.end(),
                       {"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(redis_port),
                        "YUXI_CONFIG_RELAY_LEASE_TTL=2s",
                        std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey});
        }
        agents_.back()->start(multi_host_url({&primary_, &standby_}), segment(i),
                              dir_ / ("agent" + std::to_string(i) + ".log"),
                              {"--http", "127.0.0.1:" + std::to_string(http_.back())}, env);
        return *agents_.back();
    }

    Client client(int i) {
        auto c = open_when_ready(segment(i));
        if (!c) {
            throw std::runtime_error("no segment " + segment(i));
        }
        return std::move(*c);
    }

    // Waits until the standby has replayed everything the primary committed.
    void wait_standby_caught_up() {
        Pg p(primary_.url());
        const std::string lsn = p.scalar("SELECT pg_current_wal_lsn()::text");
        Pg s(standby_.url());
        ASSERT_TRUE(eventually(
            [&] {
                return s.scalar("SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'::pg_lsn") == "t";
            },
            20s));
    }

    PgNode primary_;
    PgNode standby_;
    fs::path dir_;
    std::string tag_;
    std::vector<std::unique_ptr<Agent>> agents_;
    std::vector<std::uint16_t> http_;
};

TEST_F(PostgresHaTest, AgentsFollowThePromotedStandbyAndSayWhichServerServes) {
    start_agent(0);
    start_agent(1);
    Client c0 = client(0);
    Client c1 = client(1);
    Pg primary(primary_.url());
    primary.exec("UPDATE system_configs SET value = '\"before\"' WHERE key = 'embed_model'");
    expect_converged(c0, primary);
    expect_converged(c1, primary);
    const std::string primary_port = std::to_string(primary_.port());
    EXPECT_NE(http_get(http_[0], "/readyz").find("postgres: 127.0.0.1:" + primary_port),
              std::string::npos);
    wait_standby_caught_up();

    ASSERT_TRUE(primary_.stop("immediate"));
    ASSERT_TRUE(standby_.promote());
    Pg standby(standby_.url());
    standby.exec("UPDATE system_configs SET value = '\"after\"' WHERE key = 'embed_model'");
    expect_converged(c0, standby);
    expect_converged(c1, standby);
    EXPECT_EQ(value_in(c0, "embed_model"), "\"after\"");
    const std::string standby_port = std::to_string(standby_.port());
    EXPECT_TRUE(eventually(
        [&] {
            return http_get(http_[0], "/metrics")
                       .find(
                           "yuxi_config_serving_server_info{source=\"postgres\",address=\"127.0.0."
                           "1:" +
                           standby_port + "\"} 1") != std::string::npos;
        },
        10s));
    // Nothing was lost: no rewind reported.
    EXPECT_NE(http_get(http_[0], "/metrics").find("yuxi_config_history_rewound_total 0"),
              std::string::npos);
    // Writes continue.
    standby.exec("UPDATE system_configs SET value = '\"later\"' WHERE key = 'fast_model'");
    expect_converged(c1, standby);
}

TEST_F(PostgresHaTest, RewoundHistoryIsDetectedReportedAndDroppedEverywhere) {
    PrivateRedis redis;
    ASSERT_TRUE(redis.start());
    start_agent(0);                // direct: no Redis
    start_agent(1, redis.port());  // a relay's fleet: one of these two is the relay
    start_agent(2, redis.port());
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(client(i));
    }
    Pg primary(primary_.url());
    primary.exec("UPDATE system_configs SET value = '\"w1\"' WHERE key = 'embed_model'");
    for (const Client& c : clients) {
        expect_converged(c, primary);
    }
    wait_standby_caught_up();

    // The standby stops receiving; two commits reach only the primary, and every agent.
    // (Stopping it, not pg_wal_replay_pause(): a paused standby still receives the WAL,
    // and promotion replays everything received, so nothing would be lost.)
    ASSERT_TRUE(standby_.stop("fast"));
    const std::uint64_t common = db_revision(primary);
    primary.exec("UPDATE system_configs SET value = '\"lost-write\"' WHERE key = 'embed_model'");
    primary.exec("UPDATE system_configs SET value = '\"lost-2\"' WHERE key = 'fast_model'");
    const std::uint64_t lost_head = db_revision(primary);
    ASSERT_GT(lost_head, common);
    for (const Client& c : clients) {
        ASSERT_TRUE(until_published(
            c, [&] { return c.revision() == lost_head; }, 20s));
        EXPECT_EQ(value_in(c, "fast_model"), "\"lost-2\"");
    }

    // The primary dies; the standby, which never saw those commits, is promoted. The next
    // write there reuses the first lost revision number.
    ASSERT_TRUE(primary_.stop("immediate"));
    ASSERT_TRUE(standby_.start());
    ASSERT_TRUE(standby_.promote());
    Pg standby(standby_.url());
    ASSERT_TRUE(
        eventually([&] { return standby.scalar("SELECT pg_is_in_recovery()") == "f"; }, 20s));
    EXPECT_EQ(db_revision(standby), common);
    standby.exec("SELECT setval('yuxi_config_changes_revision_seq', " + std::to_string(common) +
                 ")");
    standby.exec("UPDATE system_configs SET value = '\"after\"' WHERE key = 'fast_model'");
    EXPECT_EQ(db_revision(standby), common + 1);  // a number the agents had applied before

    for (const Client& c : clients) {
        // The segments are ahead of the database (revision-wise): wait for the content.
        EXPECT_TRUE(until_published(
            c, [&] { return value_in(c, "fast_model") == "\"after\""; }, 30s));
        expect_converged(c, standby, 30s);
        EXPECT_EQ(value_in(c, "embed_model"), "\"w1\"");
        EXPECT_EQ(value_in(c, "fast_model"), "\"after\"");
    }
    // Reported: the direct agent and the relay found it in PostgreSQL, the follower in Redis.
    for (std::size_t i = 0; i < agents_.size(); ++i) {
        EXPECT_TRUE(agents_[i]->log_contains("HISTORY REWOUND")) << "agent " << i;
    }
    EXPECT_NE(http_get(http_[0], "/metrics").find("yuxi_config_history_rewound_total 1"),
              std::string::npos);
    const std::string status = shell_output("DATABASE_URL=" + shell_quote(standby_.url()) + " " +
                                            YUXI_CONFIGCTL_BIN + " log status 2>&1");
    EXPECT_NE(status.find("history rewound  at "), std::string::npos) << status;
    EXPECT_NE(status.find("revisions " + std::to_string(common + 1) + ".."), std::string::npos)
        << status;

    // Later writes flow as usual, over the reused numbers.
    standby.exec("UPDATE system_configs SET value = '\"w2\"' WHERE key = 'embed_model'");
    for (const Client& c : clients) {
        expect_converged(c, standby);
    }
}

}  // namespace
}  // namespace yuxi::config::test
