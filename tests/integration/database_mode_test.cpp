// yuxi-config-agent in database mode, end to end: the real binary against a real
// PostgreSQL (a fresh database per test on the server of YUXI_TEST_DATABASE_URL, with the
// schema of deploy/sql applied), written with raw SQL, read through yuxi::config::Client.
// Propagation of every kind of write, 8 concurrent writers, large values, a 100,000-row
// start-up, bad input of every kind, and a trimmed change log. (Over 600 lines: one
// fixture, one scenario per test.)
#include <gtest/gtest.h>

#include <iostream>
#include <random>
#include <regex>
#include <set>

#include "database_test_support.hpp"

namespace yuxi::config::test {
namespace {

constexpr auto kSkipMessage =
    "YUXI_TEST_DATABASE_URL is not set: run `scripts/test-servers start` and "
    "`eval \"$(scripts/test-servers env)\"` (scripts/test does both)";

class DatabaseModeTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto url = env_var("YUXI_TEST_DATABASE_URL");
        if (!url) {
            GTEST_SKIP() << kSkipMessage;
        }
        server_url_ = *url;
        dir_ = temp_dir("dbmode");
        segment_ = unique_segment(::testing::UnitTest::GetInstance()->current_test_info()->name());
        unlink_segment(segment_);
    }

    void TearDown() override {
        agent_.kill();
        pg_.reset();
        db_.reset();
        unlink_segment(segment_);
        if (!dir_.empty()) {
            if (HasFailure()) {
                std::cerr << "agent log:\n" << read_text(log_path()).substr(0, 20000) << "\n";
            }
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    void make_db(bool with_schema = true) {
        db_ = std::make_unique<TestDatabase>(server_url_, with_schema);
        pg_ = std::make_unique<Pg>(db_->url());
    }

    fs::path log_path() const { return dir_ / "agent.log"; }

    // Trims the whole change log as `yuxi-configctl log trim` would, recording the
    // watermark; returns it (the head revision).
    std::uint64_t trim_whole_log() {
        const std::uint64_t n = pg_->number("SELECT max(revision) FROM yuxi_config_changes");
        pg_->exec("BEGIN; DELETE FROM yuxi_config_changes WHERE revision <= " + std::to_string(n) +
                  "; UPDATE yuxi_config_log_state SET trimmed_through = " + std::to_string(n) +
                  "; COMMIT");
        return n;
    }

    void start_agent(const std::vector<std::string>& args = {},
                     const std::vector<std::string>& env = {}) {
        agent_.start(db_->url(), segment_, log_path(), args, env);
    }

    Client client(std::chrono::milliseconds timeout = 20s) {
        auto c = open_when_ready(segment_, timeout);
        if (!c) {
            throw std::runtime_error("the agent published no segment; log:\n" + agent_.log());
        }
        return std::move(*c);
    }

    // The JSON text PostgreSQL gives for `json`: what the segment must hold.
    std::string jsonb_text(const std::string& json) {
        return pg_->scalar("SELECT $1::jsonb::text", {json});
    }

    std::string server_url_;
    fs::path dir_;
    std::string segment_;
    std::unique_ptr<TestDatabase> db_;
    std::unique_ptr<Pg> pg_;
    Agent agent_;
};

TEST_F(DatabaseModeTest, WritesPropagateWithCategoriesAndMetadata) {
    make_db();
    pg_->exec(
        "INSERT INTO system_configs (key, value, category) VALUES "
        "('embed_model', '\"siliconflow/BAAI/bge-m3\"', 'models'), ('top_k', '10', NULL)");
    pg_->exec(
        "INSERT INTO global_metadata (key, content) VALUES ('global_metadata', "
        "'{\"databases\": {}}')");
    start_agent();
    Client c = client();
    ASSERT_TRUE(c.wait_for_revision(db_revision(*pg_), 10s));
    EXPECT_EQ(c.get_string("embed_model"), "siliconflow/BAAI/bge-m3");
    EXPECT_EQ(c.view("embed_model")->category(), "models");
    EXPECT_EQ(c.get_or<std::int64_t>("top_k", 0), 10);
    EXPECT_EQ(c.view("top_k")->category(), "");
    EXPECT_EQ(c.metadata("global_metadata"), "{\"databases\": {}}");
    EXPECT_TRUE(eventually([&] { return c.health().source_state == SourceState::ok; }));
    EXPECT_TRUE(c.health().fresh());

    // INSERT: the value is PostgreSQL's jsonb text (keys sorted by length then bytes).
    const std::string doc = R"({"z": 1, "a": [true, null, 1.5], "name": "知识库"})";
    pg_->exec("INSERT INTO system_configs (key, value, category) VALUES ('doc', $1, 'basic')",
              {doc});
    ASSERT_TRUE(until_published(c, [&] { return c.get("doc").has_value(); }));
    EXPECT_EQ(c.get("doc"), jsonb_text(doc));
    EXPECT_EQ(c.view("doc")->category(), "basic");

    // UPDATE of value and category.
    pg_->exec("UPDATE system_configs SET value = '20', category = 'features' WHERE key = 'top_k'");
    ASSERT_TRUE(until_published(c, [&] { return c.get("top_k") == "20"; }));
    EXPECT_EQ(c.view("top_k")->category(), "features");
    // Category alone.
    pg_->exec("UPDATE system_configs SET category = 'basic' WHERE key = 'top_k'");
    ASSERT_TRUE(until_published(c, [&] { return c.view("top_k")->category() == "basic"; }));

    // DELETE.
    pg_->exec("DELETE FROM system_configs WHERE key = 'doc'");
    ASSERT_TRUE(until_published(c, [&] { return !c.get("doc").has_value(); }));

    // Metadata: insert, update, delete.
    pg_->exec("INSERT INTO global_metadata (key, content) VALUES ('milvus', '{\"files\": {}}')");
    ASSERT_TRUE(until_published(c, [&] { return c.metadata("milvus").has_value(); }));
    pg_->exec(
        "UPDATE global_metadata SET content = '{\"files\": {\"f1\": {\"status\": "
        "\"done\"}}}' WHERE key = 'milvus'");
    ASSERT_TRUE(until_published(
        c, [&] { return c.metadata("milvus") == R"({"files": {"f1": {"status": "done"}}})"; }));
    EXPECT_EQ(c.view("milvus", Namespace::metadata)->category(), "");
    pg_->exec("DELETE FROM global_metadata WHERE key = 'milvus'");
    ASSERT_TRUE(until_published(c, [&] { return !c.metadata("milvus").has_value(); }));

    // A rolled-back transaction leaves a hole in the revisions: never taken for a loss.
    pg_->exec("BEGIN; INSERT INTO system_configs (key, value) VALUES ('ghost', '1'); ROLLBACK");
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('after_hole', '2')");
    ASSERT_TRUE(until_published(c, [&] { return c.get("after_hole").has_value(); }));
    EXPECT_FALSE(c.get("ghost").has_value());

    // A transaction of several rows is published as one revision, its last.
    pg_->exec(
        "BEGIN; UPDATE system_configs SET value = '30' WHERE key = 'top_k'; "
        "INSERT INTO system_configs (key, value) VALUES ('tx_a', '1'), ('tx_b', '2'); COMMIT");
    const std::uint64_t last = db_revision(*pg_);
    ASSERT_TRUE(c.wait_for_revision(last, 10s));
    EXPECT_EQ(c.revision(), last);
    EXPECT_EQ(c.view("tx_a")->revision(), last);
    EXPECT_EQ(c.view("tx_b")->revision(), last);
    EXPECT_EQ(c.view("top_k")->revision(), last);
    expect_converged(c, *pg_);

    // The connection is visible to operators under its application_name.
    EXPECT_EQ(pg_->scalar("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'yuxi-config-agent' AND datname = current_database()"),
              "1");

    // SIGTERM: exit 0, the segment stays readable and says `stopped`.
    const Exit e = agent_.stop();
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 0);
    EXPECT_EQ(c.health().source_state, SourceState::stopped);
    EXPECT_EQ(c.get("top_k"), "30");
}

TEST_F(DatabaseModeTest, SqlAlchemyUrlInDatabaseUrlSync) {
    make_db();
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('k', '1')");
    const ConnFields f = db_->fields();
    const std::string sync_url =
        "postgresql+psycopg2://" + f.user + "@" + f.host + ":" + f.port + "/" + db_->name();
    agent_.start("", segment_, log_path(), {}, {"DATABASE_URL_SYNC=" + sync_url});
    Client c = client();
    ASSERT_TRUE(c.wait_for_revision(db_revision(*pg_), 10s));
    EXPECT_EQ(c.get("k"), "1");
}

// 8 writers × 500 transactions on overlapping keys: single upserts, multi-row transactions,
// deletes, metadata, rollbacks (holes) and deadlock retries. The segment must end equal to
// the database, readers must never see the revision go back, and the agent must have
// applied every transaction of the log, in order, none skipped, each as one batch.
TEST_F(DatabaseModeTest, ConcurrentWritersConvergeInOrder) {
    make_db();
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('sentinel', 'true')");
    start_agent();
    Client c = client();
    ASSERT_TRUE(c.wait_for_revision(db_revision(*pg_), 10s));

    Reader reader(segment_, "sentinel");
    constexpr int kThreads = 8;
    constexpr int kTransactions = 500;
    std::atomic<int> deadlocks{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> writers;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < kThreads; ++t) {
        writers.emplace_back([&, t] {
            Pg pg(db_->url());
            // The schema takes the log's lock before any row lock, so multi-row writers
            // cannot deadlock; were one to, detect it in 10 ms and count it (asserted 0).
            pg.exec("SET deadlock_timeout = '10ms'");
            std::mt19937 rng(static_cast<unsigned>(t + 1));
            auto key = [&] { return "k" + std::to_string(rng() % 40); };
            const char* cats[] = {"basic", "features", "models", "agents", "sandbox"};
            for (int i = 0; i < kTransactions; ++i) {
                const std::string v = std::to_string(t * 100000 + i);
                const std::string cat = cats[rng() % 5];
                const auto kind = rng() % 20;
                std::string sql;
                std::vector<std::string> params;
                if (kind < 11) {
                    sql =
                        "INSERT INTO system_configs (key, value, category) VALUES ($1, $2::jsonb, "
                        "$3) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, "
                        "category = EXCLUDED.category";
                    params = {key(), v, cat};
                } else if (kind < 14) {
                    sql = "BEGIN; INSERT INTO system_configs (key, value, category) VALUES ('" +
                          key() + "', '" + v + "', '" + cat +
                          "') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; "
                          "UPDATE system_configs SET value = '\"m" +
                          v + "\"' WHERE key = '" + key() +
                          "'; DELETE FROM system_configs WHERE key = '" + key() + "'; COMMIT";
                } else if (kind < 16) {
                    sql = "DELETE FROM system_configs WHERE key = $1";
                    params = {key()};
                } else if (kind < 19) {
                    sql =
                        "INSERT INTO global_metadata (key, content) VALUES ($1, "
                        "jsonb_build_object('v', $2::int)) ON CONFLICT (key) DO UPDATE SET "
                        "content = EXCLUDED.content";
                    params = {"m" + std::to_string(rng() % 5), v};
                } else {
                    sql = "BEGIN; INSERT INTO system_configs (key, value) VALUES ('" + key() +
                          "', '" + v +
                          "') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value; ROLLBACK";
                }
                for (int attempt = 0;; ++attempt) {
                    const ExecResult r = pg.try_exec(sql, params);
                    if (r.ok) {
                        break;
                    }
                    (void)pg.try_exec("ROLLBACK");
                    if (r.sqlstate == "40P01" && attempt < 20) {
                        ++deadlocks;  // asserted to stay 0 below
                        continue;
                    }
                    ++failures;
                    ADD_FAILURE() << r.message;
                    break;
                }
            }
        });
    }
    for (std::thread& w : writers) {
        w.join();
    }
    const double write_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    expect_converged(c, *pg_, 30s);
    reader.finish();
    EXPECT_EQ(failures, 0);
    EXPECT_EQ(reader.errors(), 0u);
    EXPECT_EQ(reader.backwards(), 0u);
    EXPECT_EQ(reader.missing(), 0u);
    EXPECT_GT(reader.reads(), 0u);

    // Every transaction of the log after the snapshot was applied, in order, as one batch.
    const std::string log = agent_.log();
    std::smatch m;
    ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(published revision (\d+): snapshot)")));
    const std::uint64_t snapshot_rev = std::stoull(m[1]);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> groups;
    const std::regex applied(
        R"(published revision \d+: \d+ set, \d+ deleted \(log revisions (\d+)\.\.(\d+)\))");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), applied);
         it != std::sregex_iterator(); ++it) {
        groups.emplace_back(std::stoull((*it)[1]), std::stoull((*it)[2]));
    }
    const auto rows = pg_->exec(
        "SELECT revision, xmin::text FROM yuxi_config_changes WHERE revision > $1 "
        "ORDER BY revision",
        {std::to_string(snapshot_rev)});
    std::size_t row = 0;
    std::uint64_t prev_last = snapshot_rev;
    std::set<std::string> seen_tx;
    for (const auto& [first, last] : groups) {
        ASSERT_GT(first, prev_last) << "applied out of order";
        ASSERT_LT(row, rows.size());
        ASSERT_EQ(std::stoull(rows[row][0]), first) << "a revision of the log was skipped";
        const std::string tx = rows[row][1];
        EXPECT_TRUE(seen_tx.insert(tx).second) << "a transaction was split";
        while (row < rows.size() && std::stoull(rows[row][0]) <= last) {
            EXPECT_EQ(rows[row][1], tx) << "a batch mixed transactions at " << rows[row][0];
            ++row;
        }
        prev_last = last;
    }
    EXPECT_EQ(row, rows.size()) << "log rows after the last applied batch";
    EXPECT_EQ(prev_last, db_revision(*pg_));
    EXPECT_EQ(deadlocks.load(), 0) << "writers deadlocked on the log's lock";
    std::cout << "[ concurrency ] " << kThreads * kTransactions << " transactions in " << write_s
              << " s, " << rows.size() << " log rows in " << groups.size() << " batches, "
              << deadlocks << " deadlock retries, " << reader.reads() << " reads\n";
}

TEST_F(DatabaseModeTest, OneMebibyteMetadataDocument) {
    make_db();
    start_agent();
    Client c = client();
    std::string doc = "{\"databases\": {";
    for (int i = 0; doc.size() < (1u << 20); ++i) {
        doc += (i > 0 ? ", " : "") + std::string("\"kb_") + std::to_string(i) +
               "\": {\"name\": \"知识库 " + std::to_string(i) +
               "\", \"embed_model\": \"siliconflow/BAAI/bge-m3\", \"files\": [1, 2, 3]}";
    }
    doc += "}}";
    pg_->exec("INSERT INTO global_metadata (key, content) VALUES ('global_metadata', $1)", {doc});
    ASSERT_TRUE(until_published(c, [&] { return c.metadata("global_metadata").has_value(); }));
    const std::string want =
        pg_->scalar("SELECT content::text FROM global_metadata WHERE key = 'global_metadata'");
    EXPECT_GE(want.size(), 1u << 20);
    EXPECT_EQ(c.metadata("global_metadata"), want);
    pg_->exec(
        "UPDATE global_metadata SET content = content || '{\"v\": 2}' WHERE key = "
        "'global_metadata'");
    expect_converged(c, *pg_);
}

TEST_F(DatabaseModeTest, HundredThousandRowsAtStartup) {
    make_db();
    pg_->exec(
        "INSERT INTO system_configs (key, value, category) SELECT 'key_' || g, "
        "jsonb_build_object('n', g, 'name', 'value ' || g), 'basic' "
        "FROM generate_series(1, 100000) g");
    const std::uint64_t rev = db_revision(*pg_);
    const auto t0 = std::chrono::steady_clock::now();
    start_agent({"--log-level", "info"});
    Client c = client();
    ASSERT_TRUE(c.wait_for_revision(rev, 20s));
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(c.health().entries, 100000u);
    EXPECT_EQ(c.get("key_777"), R"({"n": 777, "name": "value 777"})");
    EXPECT_LT(ms, 5000.0);
    std::smatch m;
    std::string log;
    const std::regex timing(R"(\(query [0-9.]+ ms, publish [0-9.]+ ms\))");
    EXPECT_TRUE(eventually([&] {
        log = agent_.log();
        return std::regex_search(log, m, timing);
    }));
    std::cout << "[ start-up ] 100,000 rows: agent start to segment at revision " << rev << " in "
              << ms << " ms " << m.str() << "\n";
    RecordProperty("startup_100k_ms", std::to_string(static_cast<int>(ms)));
    expect_converged(c, *pg_);
}

TEST_F(DatabaseModeTest, MissingTablesThenSchemaApply) {
    make_db(false);
    start_agent();
    ASSERT_TRUE(eventually([&] { return agent_.log_contains("yuxi-configctl schema apply"); }))
        << agent_.log();
    EXPECT_FALSE(open_when_ready(segment_, 200ms).has_value()) << "published without tables";
    apply_schema(*pg_);
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('late', '\"yes\"')");
    Client c = client(40s);  // the backoff is at most a few seconds at this point
    expect_converged(c, *pg_, 40s);
    EXPECT_EQ(c.get_string("late"), "yes");
    EXPECT_TRUE(agent_.running());
}

// A notification whose payload is not a revision is a plain wake-up: the catch-up still
// runs. The row is written with the triggers off (no notification of its own), so only
// the bad notification can make the agent see it before the (hour-long) safety poll.
TEST_F(DatabaseModeTest, GarbageNotificationStillCatchesUp) {
    make_db();
    start_agent({"--safety-poll", "1h"});
    Client c = client();
    ASSERT_TRUE(c.wait_for_revision(db_revision(*pg_), 10s));
    pg_->exec(
        "BEGIN; SET LOCAL session_replication_role = replica; "
        "INSERT INTO system_configs (key, value) VALUES ('silent', '1'); "
        "INSERT INTO yuxi_config_changes (namespace, key, op, new_value) "
        "VALUES ('config', 'silent', 'U', '1'); COMMIT");
    EXPECT_FALSE(c.wait_for_change(c.revision(), 300ms)) << "woken without a notification";
    pg_->exec("NOTIFY yuxi_config, 'garbage'");
    ASSERT_TRUE(until_published(
        c, [&] { return c.get("silent") == "1"; }, 5s));
    EXPECT_TRUE(agent_.log_contains("not a revision"));
    EXPECT_FALSE(agent_.log_contains("garbage")) << "the payload is not to be logged";
    // An empty payload too.
    pg_->exec(
        "BEGIN; SET LOCAL session_replication_role = replica; "
        "UPDATE system_configs SET value = '2' WHERE key = 'silent'; "
        "INSERT INTO yuxi_config_changes (namespace, key, op, new_value) "
        "VALUES ('config', 'silent', 'U', '2'); COMMIT; NOTIFY yuxi_config");
    ASSERT_TRUE(until_published(
        c, [&] { return c.get("silent") == "2"; }, 5s));
    expect_converged(c, *pg_);

    // A revision far ahead of the log costs one catch-up, not a loop of them.
    auto catchups = [&] {
        const std::string log = agent_.log();
        std::size_t n = 0;
        for (auto p = log.find("catch-up after"); p != std::string::npos;
             p = log.find("catch-up after", p + 1)) {
            ++n;
        }
        return n;
    };
    const std::size_t before = catchups();
    pg_->exec("NOTIFY yuxi_config, '999999999999'");
    ASSERT_TRUE(eventually([&] { return catchups() > before; }, 5s));
    std::this_thread::sleep_for(300ms);
    EXPECT_LE(catchups(), before + 2);
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('after_bogus', '3')");
    expect_converged(c, *pg_);
}

TEST_F(DatabaseModeTest, ValueOverLimitIsRefusedTheRestApplied) {
    make_db();
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('big', '\"small at first\"')");
    start_agent({"--max-value-bytes", "64"});
    Client c = client();
    ASSERT_TRUE(c.wait_for_revision(db_revision(*pg_), 10s));
    const std::string secret(200, 'x');
    // One transaction: the refused values and a good one.
    pg_->exec("BEGIN");
    pg_->exec("UPDATE system_configs SET value = to_jsonb($1::text) WHERE key = 'big'", {secret});
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('fine', '\"ok\"')");
    pg_->exec(
        "INSERT INTO global_metadata (key, content) VALUES ('huge', "
        "jsonb_build_object('blob', $1::text))",
        {secret});
    pg_->exec("COMMIT");
    ASSERT_TRUE(c.wait_for_revision(db_revision(*pg_), 10s));
    EXPECT_EQ(c.get_string("fine"), "ok");
    EXPECT_EQ(c.get_string("big"), "small at first") << "a refused key keeps its last value";
    EXPECT_FALSE(c.metadata("huge").has_value());
    EXPECT_TRUE(agent_.log_contains("config key 'big'"));
    EXPECT_TRUE(agent_.log_contains("metadata key 'huge'"));
    EXPECT_FALSE(agent_.log_contains(secret)) << "values are never logged";
    EXPECT_TRUE(eventually([&] { return c.health().source_state == SourceState::stale; }));

    // Fixing the values publishes them, and the source is ok again.
    pg_->exec("UPDATE system_configs SET value = '\"fixed\"' WHERE key = 'big'");
    pg_->exec("DELETE FROM global_metadata WHERE key = 'huge'");
    expect_converged(c, *pg_);
    EXPECT_EQ(c.get_string("big"), "fixed");
    EXPECT_TRUE(eventually([&] { return c.health().source_state == SourceState::ok; }));
}

// The log trimmed while the agent is stopped: the restarted agent loads a snapshot at the
// trim watermark (the log is empty), and goes on from there.
TEST_F(DatabaseModeTest, LogTrimmedWhileStoppedResyncs) {
    make_db();
    pg_->exec(
        "INSERT INTO system_configs (key, value) SELECT 'k' || g, to_jsonb(g) "
        "FROM generate_series(1, 5) g");
    start_agent();
    {
        Client c = client();
        expect_converged(c, *pg_);
    }
    ASSERT_EQ(agent_.stop().code, 0);
    pg_->exec("UPDATE system_configs SET value = '100' WHERE key = 'k1'");
    pg_->exec("DELETE FROM system_configs WHERE key = 'k2'");
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('k6', '6')");
    const std::uint64_t n = trim_whole_log();
    start_agent();
    Client c = client();
    expect_converged(c, *pg_);
    EXPECT_EQ(c.revision(), n);
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('k7', '7')");
    expect_converged(c, *pg_);
}

// The log trimmed past a running agent's revision (it was frozen meanwhile): the catch-up
// sees the watermark and resyncs in place, as one batch.
TEST_F(DatabaseModeTest, LogTrimmedPastRunningAgentResyncs) {
    make_db();
    pg_->exec(
        "INSERT INTO system_configs (key, value) SELECT 'k' || g, to_jsonb(g) "
        "FROM generate_series(1, 5) g");
    start_agent();
    Client c = client();
    expect_converged(c, *pg_);
    const std::uint64_t before = c.revision();
    agent_.signal(SIGSTOP);
    pg_->exec("UPDATE system_configs SET value = '100' WHERE key = 'k1'");
    pg_->exec("DELETE FROM system_configs WHERE key = 'k2'");
    pg_->exec("INSERT INTO system_configs (key, value, category) VALUES ('k6', '6', 'models')");
    trim_whole_log();
    agent_.signal(SIGCONT);
    expect_converged(c, *pg_);
    EXPECT_GT(c.revision(), before);
    EXPECT_TRUE(agent_.log_contains("full resync"));
}

// Catch-up pages of 2 rows while transactions of 1 to 5 rows wait (the agent frozen): each
// transaction is still published whole, at its last revision, in order.
TEST_F(DatabaseModeTest, SmallPagesKeepTransactionsWhole) {
    make_db();
    start_agent({"--max-catchup-batch", "2"});
    Client c = client();
    ASSERT_TRUE(c.wait_for_revision(db_revision(*pg_), 10s));
    const std::uint64_t start = c.revision();
    agent_.signal(SIGSTOP);
    pg_->exec(
        "INSERT INTO system_configs (key, value) SELECT 'a' || g, to_jsonb(g) "
        "FROM generate_series(1, 5) g");  // one transaction of 5 rows
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('b', '1')");
    pg_->exec(
        "BEGIN; UPDATE system_configs SET value = '0' WHERE key IN ('a1', 'a2', 'a3'); "
        "DELETE FROM system_configs WHERE key = 'b'; COMMIT");
    pg_->exec("INSERT INTO global_metadata (key, content) VALUES ('m', '{}')");
    agent_.signal(SIGCONT);
    expect_converged(c, *pg_);
    // Readers are woken before the line is logged: wait for the last one.
    const std::string last = "(log revisions " + std::to_string(start + 11) + "..";
    EXPECT_TRUE(eventually([&] { return agent_.log_contains(last); }));
    const std::string log = agent_.log();
    const std::regex applied(R"(\(log revisions (\d+)\.\.(\d+)\))");
    std::vector<std::pair<std::uint64_t, std::uint64_t>> groups;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), applied);
         it != std::sregex_iterator(); ++it) {
        groups.emplace_back(std::stoull((*it)[1]), std::stoull((*it)[2]));
    }
    const std::vector<std::pair<std::uint64_t, std::uint64_t>> want = {{start + 1, start + 5},
                                                                       {start + 6, start + 6},
                                                                       {start + 7, start + 10},
                                                                       {start + 11, start + 11}};
    EXPECT_EQ(groups, want);
}

// The database recreated behind the agent (its log starts again at 1): the agent notices
// that the database is behind the segment and replaces the segment with its state.
TEST_F(DatabaseModeTest, DatabaseBehindTheSegmentIsRepublished) {
    make_db();
    pg_->exec(
        "INSERT INTO system_configs (key, value) SELECT 'k' || g, to_jsonb(g) "
        "FROM generate_series(1, 20) g");
    start_agent({"--safety-poll", "200ms"});
    Client c = client();
    expect_converged(c, *pg_);
    pg_->exec(
        "DROP TABLE system_configs, global_metadata, yuxi_config_changes, "
        "yuxi_config_log_state CASCADE");
    apply_schema(*pg_);
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('fresh', '1')");
    ASSERT_TRUE(eventually(
        [&] {
            try {
                return Client::open(segment_).get("fresh").has_value();
            } catch (const SegmentError&) {
                return false;
            }
        },
        20s))
        << agent_.log();
    Client again = Client::open(segment_);
    expect_converged(again, *pg_);
    EXPECT_EQ(again.revision(), 1u);
    EXPECT_TRUE(agent_.log_contains("behind"));
}

TEST_F(DatabaseModeTest, SecondAgentOnTheSameSegmentExits1) {
    make_db();
    start_agent();
    Client c = client();
    Agent second;
    second.start(db_->url(), segment_, dir_ / "second.log");
    const Exit e = second.wait_exit();
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 1);
    EXPECT_NE(second.log().find("already writing"), std::string::npos) << second.log();
}

// Bad URLs need no server: the agent must refuse them at start with exit status 2, saying
// what is wrong, without the password.
class BadUrlTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BadUrlTest, Exits2WithoutShowingThePassword) {
    const fs::path dir = temp_dir("badurl");
    Agent agent;
    agent.spawn({},
                {"CONFIG_MODE=database", std::string("DATABASE_URL=") + GetParam(),
                 "YUXI_CONFIG_SEGMENT=" + unique_segment("badurl"), "YUXI_CONFIG_HTTP=127.0.0.1:0"},
                dir / "agent.log");
    const Exit e = agent.wait_exit();
    const std::string log = agent.log();
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 2) << log;
    EXPECT_NE(log.find("DATABASE_URL"), std::string::npos) << log;
    EXPECT_EQ(log.find("s3cr3t"), std::string::npos) << log;
    std::error_code ec;
    fs::remove_all(dir, ec);
}

INSTANTIATE_TEST_SUITE_P(
    Urls, BadUrlTest,
    ::testing::Values("mysql://alice:s3cr3t-pw@db.example/yuxi",
                      "postgresql://alice:s3cr3t-pw@db.example:notaport/yuxi",
                      "postgresql+asyncpg://alice:s3cr3t-pw@db.example:99999999/yuxi",
                      "host=db.example password=s3cr3t-pw dbname",
                      "host=db.example password='s3cr3t-pw",
                      "postgresql://alice:s3cr3t-pw@db.example/yuxi?nosuchoption=1",
                      "postgresql://alice:s3cr3t%zz@db.example/yuxi",
                      "postgresql://alice:s3cr3t-pw@[::1/yuxi"));

TEST(DatabaseModeOptions, MissingUrlExits2) {
    const fs::path dir = temp_dir("nourl");
    Agent agent;
    agent.spawn({"--mode", "database"}, {"YUXI_CONFIG_SEGMENT=" + unique_segment("nourl")},
                dir / "agent.log");
    const Exit e = agent.wait_exit();
    EXPECT_EQ(e.code, 2);
    EXPECT_NE(agent.log().find("DATABASE_URL"), std::string::npos) << agent.log();
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace yuxi::config::test
