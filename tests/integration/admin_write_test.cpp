// yuxi-configctl's database commands against a real PostgreSQL: schema apply, set, delete,
// history, rollback, log, and read-your-write through a running agent.
#include <thread>

#include "admin_test_support.hpp"

namespace yuxi::config::test {
namespace {

using nlohmann::json;

std::uint64_t revision_in(const CtlResult& r) {
    const auto at = r.out.find("revision ");
    return at == std::string::npos ? 0 : std::stoull(r.out.substr(at + 9));
}

// ---------------------------------------------------------------------------------------
// schema apply

class SchemaTest : public AdminTest {
  protected:
    bool with_schema() const override { return false; }
};

TEST_F(SchemaTest, AppliesOnceOnADatabaseWhereTheSeedTablesHoldData) {
    // Yuxi-Know's own tables, with rows, before yuxi-config was ever applied.
    pg_->exec(
        "CREATE TABLE system_configs (id SERIAL PRIMARY KEY, key VARCHAR(255) UNIQUE NOT NULL, "
        "value JSONB NOT NULL, category VARCHAR(50), updated_at TIMESTAMP DEFAULT NOW());"
        "CREATE TABLE global_metadata (id SERIAL PRIMARY KEY, key VARCHAR(255) UNIQUE NOT NULL, "
        "content JSONB NOT NULL, updated_at TIMESTAMP DEFAULT NOW());"
        "INSERT INTO system_configs (key, value, category) VALUES ('embed_model', '\"bge-m3\"', "
        "'models');"
        "INSERT INTO global_metadata (key, content) VALUES ('global_metadata', '{\"databases\": "
        "{}}')");

    CtlResult r = db_ctl({"schema", "apply", "--dry-run"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("would apply 001_seed_tables.sql"), std::string::npos) << r.out;
    EXPECT_EQ(pg_->scalar("SELECT coalesce(to_regclass('yuxi_config_schema')::text, 'none')"),
              "none");

    r = db_ctl({"schema", "apply"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("applied 001_seed_tables.sql (version 1)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("applied 002_change_log.sql (version 2)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("applied 003_high_availability.sql (version 3)"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("applied 004_value_schemas.sql (version 4)"), std::string::npos) << r.out;
    const auto versions = pg_->exec("SELECT version, name FROM yuxi_config_schema ORDER BY 1");
    ASSERT_EQ(versions.size(), 4u);
    EXPECT_EQ(versions[0][1], "001_seed_tables.sql");
    EXPECT_EQ(versions[1][0], "2");
    const std::string applied_at =
        pg_->scalar("SELECT max(applied_at)::text FROM yuxi_config_schema");

    r = db_ctl({"schema", "apply"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "schema is up to date (version 4)\n");
    EXPECT_EQ(pg_->scalar("SELECT max(applied_at)::text FROM yuxi_config_schema"), applied_at);
    EXPECT_EQ(pg_->number("SELECT count(*) FROM yuxi_config_schema"), 4u);

    // The seed's rows are intact, and writes to them are now logged.
    EXPECT_EQ(value_of("embed_model"), "\"bge-m3\"");
    r = db_ctl({"set", "embed_model", "\"bge-large\""});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(revision_in(r), 1u);
    // The row predates the log: rollback to before the change restores the seed's value.
    r = db_ctl({"rollback", "embed_model", "--to-revision", "0"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(value_of("embed_model"), "\"bge-m3\"");

    r = db_ctl({"schema", "status"});
    EXPECT_EQ(r.out,
              "applied  001_seed_tables.sql\napplied  002_change_log.sql\napplied  "
              "003_high_availability.sql\napplied  004_value_schemas.sql\n");
}

TEST_F(SchemaTest, ConcurrentRunsApplyEachMigrationOnce) {
    std::vector<std::unique_ptr<Ctl>> runs;
    for (int i = 0; i < 3; ++i) {
        runs.push_back(
            std::make_unique<Ctl>(std::vector<std::string>{"schema", "apply"},
                                  std::vector<std::string>{"DATABASE_URL=" + db_->url()}));
    }
    int applied = 0;
    for (auto& c : runs) {
        const CtlResult r = c->finish();
        EXPECT_EQ(r.status, 0) << describe(r);
        applied += r.out.find("applied 002") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(applied, 1);
    EXPECT_EQ(pg_->number("SELECT count(*) FROM yuxi_config_schema"), 4u);
}

TEST_F(SchemaTest, MissingSqlDirAndMissingTablesSayWhatToDo) {
    CtlResult r = db_ctl({"schema", "apply", "--sql-dir", "/nonexistent"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("--sql-dir"), std::string::npos) << r.err;
    r = db_ctl({"set", "a", "1"});
    EXPECT_EQ(r.status, 4);
    EXPECT_NE(r.err.find("schema apply"), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------------------
// set, delete

using WriteTest = AdminTest;

TEST_F(WriteTest, SetWritesConfigAndMetadataWithCategories) {
    CtlResult r = db_ctl({"set", "top_k", "10", "--category", "retrieval"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "revision 1\n");
    EXPECT_EQ(pg_->scalar("SELECT value::text || ' ' || category FROM system_configs WHERE key = "
                          "'top_k'"),
              "10 retrieval");

    // A new key without --category gets the mapping's; an unknown key none; an existing
    // key keeps its own.
    ASSERT_EQ(db_ctl({"set", "embed_model", "\"bge-m3\""}).status, 0);
    ASSERT_EQ(db_ctl({"set", "my_key", "{\"a\": [1, 2]}"}).status, 0);
    ASSERT_EQ(db_ctl({"set", "top_k", "-5"}).status, 0);
    EXPECT_EQ(pg_->scalar("SELECT category FROM system_configs WHERE key = 'embed_model'"),
              "models");
    EXPECT_EQ(pg_->scalar("SELECT coalesce(category, 'NULL') FROM system_configs WHERE key = "
                          "'my_key'"),
              "NULL");
    EXPECT_EQ(pg_->scalar("SELECT value::text || ' ' || category FROM system_configs WHERE key = "
                          "'top_k'"),
              "-5 retrieval");

    r = db_ctl({"set", "global_metadata", "{\"databases\": {\"kb\": {\"name\": \"测试库\"}}}",
                "--metadata", "--json"});
    ASSERT_EQ(r.status, 0) << describe(r);
    const json j = json::parse(r.out);
    EXPECT_EQ(j["namespace"], "metadata");
    EXPECT_EQ(j["revision"], 5);
    EXPECT_EQ(j["changed"], true);
    EXPECT_EQ(json::parse(pg_->scalar(
                  "SELECT content::text FROM global_metadata WHERE key = 'global_metadata'")),
              json::parse("{\"databases\": {\"kb\": {\"name\": \"测试库\"}}}"));

    // The same value again (other spacing): nothing written, no revision drawn.
    r = db_ctl({"set", "my_key", "{ \"a\" : [1,2] }"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "unchanged (revision 3)\n");
    EXPECT_EQ(revision(), 5u);

    EXPECT_EQ(db_ctl({"set", "global_metadata", "{}", "--metadata", "--category", "x"}).status, 2);
}

TEST_F(WriteTest, BadJsonChangesNothing) {
    ASSERT_EQ(db_ctl({"set", "a", "1"}).status, 0);
    for (const char* bad : {"{bad", "bge-m3", "", "[1,", "\"unterminated"}) {
        const CtlResult r = db_ctl({"set", "a", bad});
        EXPECT_EQ(r.status, 2) << bad << ": " << describe(r);
        EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("column"), std::string::npos) << r.err;
        EXPECT_EQ(r.out, "");
    }
    // Valid JSON that jsonb refuses, and a key longer than the seed's VARCHAR(255).
    EXPECT_EQ(db_ctl({"set", "a", R"("nul \u0000")"}).status, 2);
    const CtlResult r = db_ctl({"set", std::string(300, 'k'), "1"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_NE(r.err.find("refused the input"), std::string::npos) << r.err;
    EXPECT_EQ(revision(), 1u);
    EXPECT_EQ(value_of("a"), "1");
}

TEST_F(WriteTest, UnreachableDatabaseFailsClearlyWithoutThePassword) {
    const std::string port = std::to_string(free_port());
    for (const std::string& url :
         {"postgresql://yuxi:s3cretpw@127.0.0.1:" + port + "/yuxi_know",
          "postgresql+asyncpg://yuxi:s3cretpw@127.0.0.1:" + port + "/yuxi_know"}) {
        const CtlResult r = ctl({"set", "a", "1"}, {"DATABASE_URL=" + url});
        EXPECT_EQ(r.status, 4) << describe(r);
        EXPECT_NE(r.err.find("cannot connect to postgresql"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("yuxi:***@"), std::string::npos) << r.err;
        EXPECT_EQ(r.err.find("s3cretpw"), std::string::npos) << r.err;
        EXPECT_EQ(r.out.find("s3cretpw"), std::string::npos) << r.out;
        EXPECT_LT(r.took, 6s);
    }
    // DATABASE_URL_SYNC is the fallback name; an URL that does not parse is a usage error.
    CtlResult r =
        ctl({"history", "a"}, {"DATABASE_URL_SYNC=postgresql://u:pw1@127.0.0.1:" + port + "/d"});
    EXPECT_EQ(r.status, 4) << describe(r);
    r = ctl({"set", "a", "1"}, {"DATABASE_URL=mysql://u:s3cretpw@h/d"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(r.err.find("s3cretpw"), std::string::npos) << r.err;
    r = ctl({"set", "a", "1"});
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("DATABASE_URL"), std::string::npos) << r.err;
    EXPECT_EQ(revision(), 0u);
}

TEST_F(WriteTest, IfRevisionRefusesAStaleWrite) {
    const std::uint64_t r1 = revision_in(db_ctl({"set", "k", "1"}));
    const std::uint64_t r2 = revision_in(db_ctl({"set", "k", "2"}));
    ASSERT_EQ(r2, r1 + 1);

    CtlResult r = db_ctl({"set", "k", "3", "--if-revision", std::to_string(r1)});
    EXPECT_EQ(r.status, 3) << describe(r);
    EXPECT_NE(r.err.find("changed at revision " + std::to_string(r2)), std::string::npos) << r.err;
    EXPECT_EQ(value_of("k"), "2");
    EXPECT_EQ(revision(), r2);

    r = db_ctl({"set", "k", "3", "--if-revision", std::to_string(r1), "--json"});
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(json::parse(r.out)["revision"], r2);

    r = db_ctl({"set", "k", "3", "--if-revision", std::to_string(r2)});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(value_of("k"), "3");

    // 0: only if absent.
    EXPECT_EQ(db_ctl({"set", "k", "4", "--if-revision", "0"}).status, 3);
    EXPECT_EQ(db_ctl({"set", "new", "4", "--if-revision", "0"}).status, 0);
    EXPECT_EQ(db_ctl({"set", "absent", "4", "--if-revision", "7"}).status, 3);
    EXPECT_EQ(db_ctl({"delete", "k", "--if-revision", std::to_string(r1)}).status, 3);
    EXPECT_EQ(value_of("k"), "3");
}

TEST_F(WriteTest, ConcurrentCompareAndSetHasExactlyOneWinner) {
    for (int round = 0; round < 4; ++round) {
        const CtlResult base = db_ctl({"set", "counter", std::to_string(round * 100)});
        ASSERT_EQ(base.status, 0) << describe(base);
        const std::string at = std::to_string(revision_in(base));
        std::vector<std::unique_ptr<Ctl>> writers;
        for (int w = 0; w < 3; ++w) {
            writers.push_back(std::make_unique<Ctl>(
                std::vector<std::string>{"set", "counter", std::to_string(round * 100 + w + 1),
                                         "--if-revision", at},
                std::vector<std::string>{"DATABASE_URL=" + db_->url()}));
        }
        int won = 0;
        int refused = 0;
        std::string winner;
        for (std::size_t w = 0; w < writers.size(); ++w) {
            const CtlResult r = writers[w]->finish();
            if (r.status == 0) {
                ++won;
                winner = std::to_string(round * 100 + static_cast<int>(w) + 1);
            } else {
                EXPECT_EQ(r.status, 3) << describe(r);
                ++refused;
            }
        }
        EXPECT_EQ(won, 1) << "round " << round;
        EXPECT_EQ(refused, 2);
        EXPECT_EQ(value_of("counter"), winner);
    }
}

TEST_F(WriteTest, DeleteAndMissingKeys) {
    ASSERT_EQ(db_ctl({"set", "a", "1"}).status, 0);
    ASSERT_EQ(db_ctl({"set", "doc", "{}", "--metadata"}).status, 0);
    CtlResult r = db_ctl({"delete", "a"});
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "revision 3\n");
    EXPECT_FALSE(value_of("a"));
    r = db_ctl({"delete", "a"});
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.err.find("no config 'a'"), std::string::npos) << r.err;
    EXPECT_EQ(db_ctl({"delete", "doc"}).status, 1);  // a config key of that name: none
    EXPECT_EQ(db_ctl({"delete", "doc", "--metadata", "--json"}).status, 0);
    EXPECT_EQ(pg_->number("SELECT count(*) FROM global_metadata"), 0u);
    EXPECT_EQ(revision(), 4u);
}

// ---------------------------------------------------------------------------------------
// history, rollback, log

TEST_F(WriteTest, HistoryShowsOldToNewAndWho) {
    // Roles are the server's, not the database's: one that may exist from an earlier run.
    pg_->exec(
        "DO $$ BEGIN CREATE ROLE yuxi_test_alice LOGIN; EXCEPTION WHEN duplicate_object "
        "THEN NULL; END $$; GRANT ALL ON ALL TABLES IN SCHEMA public TO yuxi_test_alice;"
        "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO yuxi_test_alice");
    ASSERT_EQ(db_ctl({"set", "embed_model", "\"a\""}).status, 0);
    const std::string alice = make_url(db_->fields(), db_->name(), "yuxi_test_alice");
    ASSERT_EQ(ctl({"set", "embed_model", "\"b\""}, {"DATABASE_URL=" + alice}).status, 0);
    const std::string long_value = "\"" + std::string(200, 'x') + "\"";
    ASSERT_EQ(db_ctl({"set", "embed_model", long_value}).status, 0);
    ASSERT_EQ(db_ctl({"delete", "embed_model"}).status, 0);

    CtlResult r = db_ctl({"history", "embed_model"});
    ASSERT_EQ(r.status, 0) << describe(r);
    std::vector<std::string> lines;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    ASSERT_EQ(lines.size(), 4u) << r.out;
    EXPECT_EQ(lines[0].rfind("4  ", 0), 0u) << lines[0];
    EXPECT_NE(lines[0].find("  D  "), std::string::npos);
    EXPECT_NE(lines[0].find("-> (deleted)"), std::string::npos);
    EXPECT_NE(lines[1].find("\"b\" -> \"xxx"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("..."), std::string::npos);  // cut in the table
    EXPECT_LT(lines[1].size(), 200u);
    EXPECT_NE(lines[2].find("yuxi_test_alice  U  \"a\" -> \"b\""), std::string::npos) << lines[2];
    EXPECT_NE(lines[3].find("postgres  U  (absent) -> \"a\""), std::string::npos) << lines[3];

    r = db_ctl({"history", "embed_model", "--json", "--limit", "2"});
    ASSERT_EQ(r.status, 0) << describe(r);
    const json j = json::parse(r.out);
    ASSERT_EQ(j.size(), 2u);
    EXPECT_EQ(j[0]["op"], "D");
    EXPECT_EQ(j[1]["new_value"], std::string(200, 'x'));  // whole in --json
    EXPECT_EQ(j[1]["old_value"], "b");
    EXPECT_EQ(j[1]["changed_by"], "postgres");
    EXPECT_EQ(j[1]["category"], "models");

    EXPECT_EQ(db_ctl({"history", "nothing"}).status, 1);
}

TEST_F(WriteTest, RollbackRestoresDeletesAndRefusesWhatWasTrimmed) {
    ASSERT_EQ(db_ctl({"set", "other", "0"}).status, 0);                             // 1
    const std::uint64_t r1 = revision_in(db_ctl({"set", "k", "\"v1\""}));           // 2
    ASSERT_EQ(db_ctl({"set", "k", "\"v2\"", "--category", "features"}).status, 0);  // 3
    ASSERT_EQ(db_ctl({"set", "k", "\"v3\""}).status, 0);                            // 4

    CtlResult r = db_ctl({"rollback", "k", "--to-revision", std::to_string(r1)});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "revision 5\n");
    EXPECT_EQ(value_of("k"), "\"v1\"");
    // The category as it was then, too (k has none in the mapping).
    EXPECT_EQ(pg_->scalar("SELECT coalesce(category, 'NULL') FROM system_configs WHERE key = 'k'"),
              "NULL");
    // A normal write: logged with old and new.
    EXPECT_EQ(pg_->scalar("SELECT old_value::text || ' ' || new_value::text FROM "
                          "yuxi_config_changes WHERE revision = 5"),
              "\"v3\" \"v1\"");

    r = db_ctl({"rollback", "k", "--to-revision", "3"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(value_of("k"), "\"v2\"");
    EXPECT_EQ(pg_->scalar("SELECT category FROM system_configs WHERE key = 'k'"), "features");
    EXPECT_EQ(db_ctl({"rollback", "k", "--to-revision", "3"}).out, "unchanged (revision 6)\n");

    // Before the key existed: deleted.
    r = db_ctl({"rollback", "k", "--to-revision", std::to_string(r1 - 1)});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_FALSE(value_of("k"));

    // Trimmed past: refused, nothing written.
    ASSERT_EQ(db_ctl({"log", "trim", "--keep", "2"}).status, 0);
    const std::uint64_t before = revision();
    r = db_ctl({"rollback", "k", "--to-revision", std::to_string(r1)});
    EXPECT_EQ(r.status, 1) << describe(r);
    EXPECT_NE(r.err.find("trimmed through revision"), std::string::npos) << r.err;
    EXPECT_EQ(revision(), before);
    EXPECT_FALSE(value_of("k"));
}

TEST_F(WriteTest, LogTrimAndStatus) {
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(
            db_ctl({"set", std::string("k").append(std::to_string(i)), std::to_string(i)}).status,
            0);
    }
    CtlResult r = db_ctl({"log", "trim", "--keep", "2"});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "trimmed 3 rows through revision 3; the log keeps the newest 2\n");
    r = db_ctl({"log", "status", "--json"});
    ASSERT_EQ(r.status, 0) << describe(r);
    const json j = json::parse(r.out);
    EXPECT_EQ(j["oldest_revision"], 4);
    EXPECT_EQ(j["newest_revision"], 5);
    EXPECT_EQ(j["rows"], 2);
    EXPECT_EQ(j["trimmed_through"], 3);
    EXPECT_EQ(j["database_revision"], 5);
    EXPECT_EQ(db_ctl({"log", "trim", "--keep", "10"}).out,
              "nothing to trim: the log has at most 10 rows\n");
    EXPECT_EQ(db_ctl({"log", "trim"}).status, 2);
}

// ---------------------------------------------------------------------------------------
// With a running agent

class AgentWriteTest : public AdminTest {
  protected:
    void SetUp() override {
        AdminTest::SetUp();
        if (IsSkipped()) {
            return;
        }
        dir_ = temp_dir("admin");
        segment_ = unique_segment(::testing::UnitTest::GetInstance()->current_test_info()->name());
        unlink_segment(segment_);
        agent_.start(db_->url(), segment_, dir_ / "agent.log");
        client_ = open_when_ready(segment_);
        ASSERT_TRUE(client_) << agent_.log();
    }
    void TearDown() override {
        agent_.kill();
        if (!segment_.empty()) {
            unlink_segment(segment_);
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path dir_;
    std::string segment_;
    Agent agent_;
    std::optional<Client> client_;
};

TEST_F(AgentWriteTest, SetWaitReturnsOnceTheSegmentShowsTheWrite) {
    for (int i = 0; i < 5; ++i) {
        const std::string v = "\"value " + std::to_string(i) + "\"";
        const CtlResult r = db_ctl({"set", "embed_model", v, "--wait", "--segment", segment_});
        ASSERT_EQ(r.status, 0) << describe(r);
        // No waiting here: --wait already did.
        EXPECT_GE(client_->revision(), revision_in(r));
        EXPECT_EQ(client_->get("embed_model"), v);
    }
    CtlResult r = db_ctl({"delete", "embed_model", "--wait", "--segment", segment_});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_FALSE(client_->get("embed_model"));
    r = db_ctl({"rollback", "embed_model", "--to-revision", "2", "--wait", "--segment", segment_});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(client_->get("embed_model"), "\"value 1\"");

    // The segment from YUXI_CONFIG_SEGMENT, and a segment that does not exist: refused
    // before anything is written.
    r = db_ctl({"set", "a", "1", "--wait"}, {"YUXI_CONFIG_SEGMENT=" + segment_});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(client_->get("a"), "1");
    const std::uint64_t before = revision();
    r = db_ctl({"set", "a", "2", "--wait", "--segment", segment_ + "-absent"});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(revision(), before);
}

TEST_F(AgentWriteTest, WaitTimesOutWhenTheAgentDoesNotApply) {
    ASSERT_TRUE(until_published(*client_, [&] { return client_->revision() == 0; }));
    agent_.signal(SIGSTOP);
    const CtlResult r =
        db_ctl({"set", "a", "1", "--wait", "--timeout", "0.3", "--segment", segment_});
    agent_.signal(SIGCONT);
    EXPECT_EQ(r.status, 5) << describe(r);
    EXPECT_NE(r.err.find("the write is committed (revision 1)"), std::string::npos) << r.err;
    EXPECT_EQ(value_of("a"), "1");
    expect_converged(*client_, *pg_);
}

TEST_F(AgentWriteTest, AnAgentBehindATrimResyncs) {
    ASSERT_EQ(db_ctl({"set", "a", "1", "--wait", "--segment", segment_}).status, 0);
    agent_.signal(SIGSTOP);
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(
            db_ctl({"set", std::string("b").append(std::to_string(i)), std::to_string(i)}).status,
            0);
    }
    ASSERT_EQ(db_ctl({"delete", "a"}).status, 0);
    ASSERT_EQ(db_ctl({"log", "trim", "--keep", "1"}).status, 0);
    agent_.signal(SIGCONT);
    expect_converged(*client_, *pg_);
    EXPECT_FALSE(client_->get("a"));
}

}  // namespace
}  // namespace yuxi::config::test
