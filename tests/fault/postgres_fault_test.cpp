// Database mode under faults, on a private PostgreSQL this test starts (initdb in a
// temporary directory, a free port), so that restarting it disturbs no one: the agent's
// backend terminated in the middle of a write storm, fast and immediate restarts, the
// server down while the agent runs and when it starts, writes while the agent is stopped,
// and a wrong password. Throughout, a reader thread checks that reads never fail, the
// sentinel key never disappears and the revision never moves back; at the end, the
// segment equals the database.
#include <gtest/gtest.h>

#include <iostream>

#include "database_test_support.hpp"

namespace yuxi::config::test {
namespace {

// Trust for the superuser the test connects as; passwords for everyone else (the
// wrong-password test).
constexpr const char* kHba =
    "local all all trust\n"
    "host all postgres 127.0.0.1/32 trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n";

class PostgresFaultTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        skip_reason_ = PrivateServer::unavailable();
        if (!skip_reason_.empty()) {
            return;
        }
        server_ = new PrivateServer();
        if (!server_->start(kHba)) {
            skip_reason_ = "the private PostgreSQL did not start";
            delete server_;
            server_ = nullptr;
        }
    }

    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }

    void SetUp() override {
        if (!skip_reason_.empty()) {
            GTEST_SKIP() << "no private PostgreSQL: " << skip_reason_;
        }
        // A previous test may have left the server stopped.
        if (!server_up()) {
            ASSERT_TRUE(server_->start_again());
        }
        dir_ = temp_dir("pgfault");
        segment_ = unique_segment(::testing::UnitTest::GetInstance()->current_test_info()->name());
        unlink_segment(segment_);
        db_ = std::make_unique<TestDatabase>(server_->url());
        pg_ = std::make_unique<Pg>(db_->url());
        pg_->exec(
            "INSERT INTO system_configs (key, value, category) VALUES "
            "('sentinel', '\"always here\"', 'basic')");
    }

    void TearDown() override {
        agent_.kill();
        pg_.reset();
        if (server_ != nullptr && !server_up()) {
            (void)server_->start_again();
        }
        db_.reset();
        unlink_segment(segment_);
        if (!dir_.empty()) {
            if (HasFailure()) {
                std::cerr << "agent log:\n" << read_text(dir_ / "agent.log").substr(0, 20000);
            }
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    static bool server_up() {
        try {
            Pg pg(server_->url());
            return pg.ok();
        } catch (const std::exception&) {
            return false;
        }
    }

    void start_agent(const std::string& url = {}) {
        agent_.start(url.empty() ? db_->url() : url, segment_, dir_ / "agent.log");
    }

    Client client(std::chrono::milliseconds timeout = 20s) {
        auto c = open_when_ready(segment_, timeout);
        if (!c) {
            throw std::runtime_error("no segment; log:\n" + agent_.log());
        }
        return std::move(*c);
    }

    // A working connection: the fixture's own may have died with the server (libpq only
    // notices on the next query).
    Pg& pg() {
        if (!pg_ || !pg_->ok() || !pg_->try_exec("SELECT 1").ok) {
            pg_.reset();
            EXPECT_TRUE(eventually(
                [&] {
                    try {
                        pg_ = std::make_unique<Pg>(db_->url());
                        return true;
                    } catch (const std::exception&) {
                        return false;
                    }
                },
                30s));
        }
        return *pg_;
    }

    // The pid of the agent's backend, found by application_name; 0 if none.
    int agent_backend() {
        const auto rows = pg().exec(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'yuxi-config-agent' "
            "AND datname = current_database()");
        return rows.empty() ? 0 : std::stoi(rows[0][0]);
    }

    void expect_reader_clean(Reader& r) {
        r.finish();
        EXPECT_EQ(r.errors(), 0u);
        EXPECT_EQ(r.missing(), 0u) << "the sentinel disappeared";
        EXPECT_EQ(r.backwards(), 0u) << "the revision moved back";
        EXPECT_GT(r.reads(), 100u);
    }

    // A server restart (pg_ctl -m `mode`) in the middle of a write storm, with a reader
    // running: the segment converges and the reader never saw an error or a step back;
    // then `after` checks more on the agent's segment.
    void restart_during_write_storm(const std::string& mode,
                                    const std::function<void(const Client&)>& after = {}) {
        start_agent();
        Client c = client();
        expect_converged(c, pg());
        Reader reader(segment_, "sentinel");
        WriteStorm storm(db_->url(), 4, 30);
        std::this_thread::sleep_for(500ms);
        ASSERT_TRUE(server_->restart(mode));
        std::this_thread::sleep_for(1000ms);
        storm.finish();
        EXPECT_GT(storm.commits(), 50u);
        expect_converged(c, pg(), 40s);
        expect_reader_clean(reader);
        if (after) {
            after(c);
        }
    }

    static inline PrivateServer* server_ = nullptr;
    static inline std::string skip_reason_;

    fs::path dir_;
    std::string segment_;
    std::unique_ptr<TestDatabase> db_;
    std::unique_ptr<Pg> pg_;
    Agent agent_;
};

TEST_F(PostgresFaultTest, BackendTerminatedDuringWriteStorm) {
    start_agent();
    Client c = client();
    expect_converged(c, pg());
    Reader reader(segment_, "sentinel");
    WriteStorm storm(db_->url(), 4, 30);
    for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(300ms);
        int backend = 0;
        ASSERT_TRUE(eventually([&] { return (backend = agent_backend()) != 0; }, 20s));
        EXPECT_EQ(pg().scalar("SELECT pg_terminate_backend($1)", {std::to_string(backend)}), "t");
        ASSERT_TRUE(eventually(
            [&] {
                const int now = agent_backend();
                return now != 0 && now != backend;
            },
            20s))
            << "the agent did not reconnect";
    }
    std::this_thread::sleep_for(300ms);
    storm.finish();
    EXPECT_GT(storm.commits(), 100u);
    expect_converged(c, pg());
    expect_reader_clean(reader);
    EXPECT_TRUE(agent_.log_contains("lost the connection"));
    EXPECT_TRUE(eventually([&] { return c.health().source_state == SourceState::ok; }));
    std::cout << "[ terminate ] " << storm.commits() << " commits, " << reader.reads()
              << " reads\n";
}

TEST_F(PostgresFaultTest, FastRestartDuringWriteStorm) {
    restart_during_write_storm("fast", [](const Client& c) {
        EXPECT_TRUE(eventually([&] { return c.health().source_state == SourceState::ok; }));
    });
}

TEST_F(PostgresFaultTest, ImmediateRestartDuringWriteStorm) {
    restart_during_write_storm("immediate");
}

// PostgreSQL away while the agent runs: readers keep the last state, the agent keeps its
// heartbeat and says `stale`; writes right after the server returns are caught up.
TEST_F(PostgresFaultTest, ServerDownWhileRunning) {
    start_agent();
    Client c = client();
    expect_converged(c, pg());
    const std::uint64_t before = c.revision();
    Reader reader(segment_, "sentinel");
    pg_.reset();
    ASSERT_TRUE(server_->stop("fast"));
    EXPECT_TRUE(eventually([&] { return c.health().source_state == SourceState::stale; }));
    std::this_thread::sleep_for(1500ms);
    const Health h = c.health();
    EXPECT_TRUE(h.fresh(3s)) << "the heartbeat must go on while PostgreSQL is away";
    EXPECT_EQ(c.revision(), before);
    EXPECT_EQ(c.get_string("sentinel"), "always here");
    ASSERT_TRUE(server_->start_again());
    pg().exec("INSERT INTO system_configs (key, value) VALUES ('while_back', '1')");
    pg().exec("UPDATE system_configs SET value = '\"still here\"' WHERE key = 'sentinel'");
    expect_converged(c, pg(), 40s);
    EXPECT_TRUE(eventually([&] { return c.health().source_state == SourceState::ok; }, 10s));
    expect_reader_clean(reader);
}

// PostgreSQL down when the agent starts: no segment (not ready), retries; up → ready.
TEST_F(PostgresFaultTest, ServerDownAtStart) {
    pg_.reset();
    ASSERT_TRUE(server_->stop("fast"));
    start_agent();
    ASSERT_TRUE(eventually([&] { return agent_.log_contains("cannot connect"); }));
    EXPECT_TRUE(agent_.log_contains("not ready"));
    EXPECT_FALSE(open_when_ready(segment_, 300ms).has_value());
    ASSERT_TRUE(server_->start_again());
    Client c = client(40s);
    expect_converged(c, pg(), 40s);
}

// Writes while the agent is stopped (SIGTERM, and killed) reach the restarted agent, and a
// reader that stays on the segment across the restarts never sees a failure.
TEST_F(PostgresFaultTest, WritesWhileAgentStoppedOrKilled) {
    start_agent();
    Client c = client();
    expect_converged(c, pg());
    Reader reader(segment_, "sentinel");
    ASSERT_EQ(agent_.stop().code, 0);
    pg().exec(
        "INSERT INTO system_configs (key, value) SELECT 'down_' || g, to_jsonb(g) "
        "FROM generate_series(1, 50) g");
    pg().exec("DELETE FROM system_configs WHERE key = 'down_7'");
    start_agent();
    expect_converged(c, pg());
    agent_.kill();
    pg().exec("UPDATE system_configs SET value = '0' WHERE key LIKE 'down_%'");
    start_agent();
    expect_converged(c, pg());
    expect_reader_clean(reader);
}

// A wrong password: the agent says so plainly (without the password), keeps retrying, and
// connects without a restart once the password it has becomes the right one.
TEST_F(PostgresFaultTest, WrongPasswordRetriesUntilFixed) {
    pg().exec("DROP ROLE IF EXISTS yuxi_pw_agent");
    pg().exec("CREATE ROLE yuxi_pw_agent LOGIN PASSWORD 'right-pass-1'");
    pg().exec("GRANT SELECT ON ALL TABLES IN SCHEMA public TO yuxi_pw_agent");
    start_agent(server_->url(db_->name(), "yuxi_pw_agent", "wr0ng-pass-2"));
    ASSERT_TRUE(eventually([&] { return agent_.log_contains("refused the credentials"); }))
        << agent_.log();
    // Still retrying a moment later.
    ASSERT_TRUE(eventually(
        [&] {
            const std::string log = agent_.log();
            std::size_t n = 0;
            for (auto p = log.find("refused the credentials"); p != std::string::npos;
                 p = log.find("refused the credentials", p + 1)) {
                ++n;
            }
            return n >= 2;
        },
        10s));
    EXPECT_TRUE(agent_.running());
    EXPECT_FALSE(agent_.log_contains("wr0ng-pass-2")) << "passwords are never logged";
    EXPECT_FALSE(open_when_ready(segment_, 100ms).has_value());
    pg().exec("ALTER ROLE yuxi_pw_agent PASSWORD 'wr0ng-pass-2'");
    Client c = client(40s);
    expect_converged(c, pg(), 40s);
    EXPECT_FALSE(agent_.log_contains("wr0ng-pass-2"));
    agent_.kill();
    pg().exec("DROP OWNED BY yuxi_pw_agent");
    pg().exec("DROP ROLE yuxi_pw_agent");
}

}  // namespace
}  // namespace yuxi::config::test
