// The admin library (include/yuxi/config/admin.hpp) against a real PostgreSQL and real
// agents: writes visible in another process's segment after wait(), set_many as one
// transaction, compare-and-set, value schemas refused by every writer with the pointer and
// the rule, and a value that slips past by raw SQL: every agent keeps the old value,
// reports the rejection (yuxi:config:agents, /metrics), wait(fleet) and --wait-all fail
// naming the pods, and a valid write clears it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>

#include "admin_test_support.hpp"
#include "redis_test_support.hpp"
#include "support/loopback_http.hpp"
#include "yuxi/config/admin.hpp"

namespace yuxi::config::test {
namespace {

using nlohmann::json;

const char* kProviders = R"({"type":"object","additionalProperties":{
  "type":"object","required":["name","base_url","models"],
  "properties":{"name":{"type":"string"},"base_url":{"type":"string"},
                "models":{"type":"array","items":{"type":"string"},"minItems":1}}}})";

class AdminLibraryTest : public AdminTest {
  protected:
    void SetUp() override {
        AdminTest::SetUp();
        if (IsSkipped()) {
            return;
        }
        dir_ = temp_dir("admin-lib");
        tag_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }
    void TearDown() override {
        for (std::size_t i = 0; i < agents_.size(); ++i) {
            agents_[i]->kill();
            if (HasFailure()) {
                const std::string log = read_text(dir_ / ("agent" + std::to_string(i) + ".log"));
                std::cerr << "--- agent " << i << " log (end):\n"
                          << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
            }
            unlink_segment(segment(static_cast<int>(i)));
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string segment(int i) const { return unique_segment(tag_ + std::to_string(i)); }

    Admin admin(std::optional<RedisEndpoint> redis = std::nullopt, int segment_of = 0) {
        AdminOptions o;
        o.database_url = db_->url();
        o.segment = segment(segment_of);
        o.redis = std::move(redis);
        o.trust.key = kTestSigningKey;
        return Admin(std::move(o));
    }

    // Agent i in database mode, with Redis if `redis_port`; its /metrics on `http`.
    Client start_agent(int i, std::uint16_t redis_port = 0, std::uint16_t http = 0) {
        agents_.push_back(std::make_unique<Agent>());
        std::vector<std::string> env = {"POD_NAME=pod" + std::to_string(i),
                                        "YUXI_CONFIG_SAFETY_POLL=500ms"};
        if (redis_port != 0) {
            env.push_back("REDIS_HOST=127.0.0.1");
            env.push_back("REDIS_PORT=" + std::to_string(redis_port));
            env.push_back("YUXI_CONFIG_RELAY_LEASE_TTL=1s");
            env.push_back(std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey);
        }
        agents_.back()->start(db_->url(), segment(i), dir_ / ("agent" + std::to_string(i) + ".log"),
                              {"--http", "127.0.0.1:" + std::to_string(http)}, env);
        auto c = open_when_ready(segment(i));
        if (!c) {
            throw std::runtime_error("no segment " + segment(i));
        }
        return std::move(*c);
    }

    fs::path dir_;
    std::string tag_;
    std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_F(AdminLibraryTest, ASetIsVisibleInAnotherProcessAfterWait) {
    const Client c = start_agent(0);
    Admin a = admin();
    const WriteResult r = a.set("embed_model", R"("bge-m3")");
    EXPECT_TRUE(r.changed);
    a.wait(r.revision, WaitScope::local, 10s);
    EXPECT_EQ(c.get("embed_model"), R"("bge-m3")");
    const auto held = a.get("embed_model");
    ASSERT_TRUE(held);
    EXPECT_EQ(held->value, R"("bge-m3")");
    EXPECT_EQ(held->revision, r.revision);
    EXPECT_FALSE(a.get("absent"));
    EXPECT_EQ(c.view("embed_model")->category(), "models");  // the mapping for a new key
    // The same value again: nothing written.
    const WriteResult again = a.set("embed_model", R"("bge-m3")");
    EXPECT_FALSE(again.changed);
    EXPECT_EQ(again.revision, r.revision);
    // Deleting, and deleting what is absent.
    const WriteResult d = a.remove("embed_model");
    EXPECT_TRUE(d.changed);
    a.wait(d.revision, WaitScope::local, 10s);
    EXPECT_FALSE(c.get("embed_model"));
    EXPECT_FALSE(a.remove("embed_model").changed);
    EXPECT_THROW(a.wait(d.revision + 100, WaitScope::local, 200ms), WaitError);
}

TEST_F(AdminLibraryTest, SetManyIsOneTransactionSeenAtOnce) {
    const Client c = start_agent(0);
    Admin a = admin();
    const std::uint64_t before = revision();
    std::vector<Write> writes;
    for (int i = 0; i < 100; ++i) {
        writes.push_back({"k" + std::to_string(i), std::to_string(i), {}});
    }
    writes.push_back({"k0", "\"last wins\"", {}});
    const WriteResult r = a.set_many(writes);
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(r.revision, before + 100);
    // One transaction in the log: one xmin.
    EXPECT_EQ(pg_->number("SELECT count(DISTINCT xmin::text) FROM yuxi_config_changes WHERE "
                          "revision > " +
                          std::to_string(before)),
              1u);
    a.wait(r.revision, WaitScope::local, 10s);
    // Published as one batch: the agent logs one revision for it (after publishing it).
    EXPECT_TRUE(eventually([&] {
        return agents_[0]->log_contains("published revision " + std::to_string(r.revision) +
                                        ": 100 set, 0 deleted");
    }));
    EXPECT_EQ(c.get("k0"), "\"last wins\"");
    EXPECT_EQ(c.get("k99"), "99");
    EXPECT_FALSE(a.set_many(writes).changed);
    EXPECT_FALSE(a.set_many({}).changed);
}

TEST_F(AdminLibraryTest, CompareAndSetRefusesAStaleRevision) {
    Admin a = admin();
    const WriteResult r1 = a.set("top_k", "10");
    WriteOptions cas;
    cas.if_revision = r1.revision;
    const WriteResult r2 = a.set("top_k", "11", cas);  // still at r1: written
    EXPECT_TRUE(r2.changed);
    try {
        (void)a.set("top_k", "12", cas);
        FAIL() << "a stale compare-and-set was written";
    } catch (const ConflictError& e) {
        EXPECT_EQ(e.kind(), AdminError::Kind::conflict);
        EXPECT_EQ(e.revision(), r2.revision);
        EXPECT_EQ(e.key(), "top_k");
    }
    cas.if_revision = 0;  // only if absent
    EXPECT_THROW((void)a.set("top_k", "13", cas), ConflictError);
    EXPECT_TRUE(a.set("new_key", "1", cas).changed);
    // In set_many: nothing is written when one key conflicts.
    WriteOptions stale;
    stale.if_revision = r1.revision;
    EXPECT_THROW((void)a.set_many({{"a", "1", {}}, {"top_k", "14", stale}}), ConflictError);
    EXPECT_FALSE(value_of("a"));
    EXPECT_EQ(value_of("top_k"), "11");
}

TEST_F(AdminLibraryTest, EveryWriterRefusesAnInvalidValueNamingThePointer) {
    Admin a = admin();
    a.set_value_schema("model_names", kProviders);
    a.set_value_schema("embed_model", R"({"type":"string"})");
    const std::uint64_t before = revision();
    try {
        (void)a.set("model_names", R"({"openai":{"name":"OpenAI","base_url":"https://x"}})");
        FAIL() << "an invalid value was written";
    } catch (const InvalidValueError& e) {
        EXPECT_EQ(e.path(), "/openai/models");
        EXPECT_TRUE(e.reason().starts_with("required")) << e.reason();
        EXPECT_NE(std::string(e.what()).find("/openai/models: required"), std::string::npos)
            << e.what();
    }
    EXPECT_THROW((void)a.set_many({{"a", "1", {}}, {"embed_model", "42", {}}}), InvalidValueError);
    EXPECT_EQ(revision(), before);
    EXPECT_FALSE(value_of("a"));
    // The CLI: exit 8, the pointer and the rule on stderr, nothing written.
    CtlResult r = db_ctl({"set", "embed_model", "42"});
    EXPECT_EQ(r.status, 8) << describe(r);
    EXPECT_NE(r.err.find("(whole value): type"), std::string::npos) << r.err;
    r = db_ctl({"set", "model_names", R"({"x":{"name":"X","base_url":"u","models":[]}})"});
    EXPECT_EQ(r.status, 8) << describe(r);
    EXPECT_NE(r.err.find("/x/models: minItems"), std::string::npos) << r.err;
    EXPECT_EQ(revision(), before);
    // A schema that current values break is refused, unless forced.
    ASSERT_TRUE(a.set("top_k", "500").changed);
    try {
        a.set_value_schema("top_*", R"({"type":"integer","maximum":100})");
        FAIL() << "a schema current values break was stored";
    } catch (const InvalidValueError& e) {
        EXPECT_EQ(e.key(), "top_k");
    }
    EXPECT_FALSE(a.value_schema("top_*"));
    a.set_value_schema("top_*", R"({"type":"integer","maximum":100})", false, true);
    EXPECT_TRUE(a.value_schema("top_*"));
    EXPECT_THROW(a.set_value_schema("bad", R"({"$ref":"#"})"), AdminError);
    // Another writer changed the schemas since this Admin read them: it checks again.
    Admin other = admin();
    other.set_value_schema("fast_model", R"({"type":"string"})");
    EXPECT_THROW((void)a.set("fast_model", "1"), InvalidValueError);
    EXPECT_TRUE(a.remove_value_schema("fast_model"));
    EXPECT_TRUE(other.set("fast_model", "1").changed);
}

TEST_F(AdminLibraryTest, ImportTakesAPydanticSchemaAndTheCliListsIt) {
    const fs::path file = fs::path(db_->name() + "-model.json");
    {
        std::ofstream(file) << R"({"title":"Config","type":"object",
          "$defs":{"Provider":{"type":"object","required":["models"],
                   "properties":{"models":{"type":"array","items":{"type":"string"}}}}},
          "properties":{"embed_model":{"type":"string","default":"bge-m3"},
                        "model_names":{"type":"object",
                                       "additionalProperties":{"$ref":"#/$defs/Provider"}}}})";
    }
    CtlResult r = db_ctl({"value-schema", "import", file.string()});
    fs::remove(file);
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("stored 2 schema(s): embed_model model_names"), std::string::npos);
    r = db_ctl({"value-schema", "list", "--json"});
    ASSERT_EQ(r.status, 0) << describe(r);
    const json list = json::parse(r.out);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[1]["schema"]["additionalProperties"]["required"], json::array({"models"}));
    r = db_ctl({"set", "model_names", R"({"p":{}})"});
    EXPECT_EQ(r.status, 8) << describe(r);
    EXPECT_NE(r.err.find("/p/models: required"), std::string::npos) << r.err;
    EXPECT_EQ(db_ctl({"value-schema", "get", "nothing"}).status, 1);
    EXPECT_EQ(db_ctl({"value-schema", "delete", "embed_model"}).status, 0);
    EXPECT_EQ(db_ctl({"set", "embed_model", "42"}).status, 0);
}

TEST_F(AdminLibraryTest, RollbackToARevisionRestoresEveryKeyAsOneWrite) {
    Admin a = admin();
    (void)a.set("a", "1");
    (void)a.set("b", "1");
    const std::uint64_t mark = a.set("c", "1").revision;
    (void)a.set("a", "2");
    (void)a.remove("b");
    (void)a.set("d", "1");
    const RollbackResult r = a.rollback_to(mark);
    EXPECT_TRUE(r.changed);
    EXPECT_EQ(value_of("a"), "1");
    EXPECT_EQ(value_of("b"), "1");
    EXPECT_FALSE(value_of("d"));
    ASSERT_EQ(r.keys.size(), 3u);
    EXPECT_TRUE(r.keys[2].deleted);  // d did not exist then
    EXPECT_EQ(pg_->number("SELECT count(DISTINCT xmin::text) FROM yuxi_config_changes WHERE "
                          "revision > " +
                          std::to_string(mark + 3)),
              1u);
    (void)a.trim_log(1);
    try {
        (void)a.rollback_to(mark);
        FAIL();
    } catch (const AdminError& e) {
        EXPECT_EQ(e.kind(), AdminError::Kind::not_found);
    }
}

// A value written past every writer: raw SQL.
class FleetRejectionTest : public AdminLibraryTest {};

TEST_F(FleetRejectionTest, AgentsKeepTheOldValueReportItAndWaitsFailNamingThePods) {
    PrivateRedis redis;
    if (redis_server_bin().empty()) {
        GTEST_SKIP() << "no redis-server";
    }
    ASSERT_TRUE(redis.start());
    RedisEndpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = redis.port();
    Admin a = admin(endpoint);
    a.set_value_schema("embed_model", R"({"type":"string","minLength":1})");
    const std::uint64_t good = a.set("embed_model", R"("bge-m3")").revision;
    std::vector<std::uint16_t> http;
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        http.push_back(free_port());
        clients.push_back(start_agent(i, redis.port(), http.back()));
    }
    ASSERT_EQ(a.fleet().wait(good, 20s), 3u);

    pg_->exec("UPDATE system_configs SET value = '42' WHERE key = 'embed_model'");
    const std::uint64_t bad = revision();
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('other', '1')");  // valid
    const std::uint64_t after = revision();
    for (const Client& c : clients) {
        ASSERT_TRUE(c.wait_for_revision(after, 20s)) << c.name();
        EXPECT_EQ(c.get("embed_model"), R"("bge-m3")") << c.name();  // the last good value
        EXPECT_EQ(c.get("other"), "1") << c.name();                  // the rest applied
    }
    // Every agent reports it; waits fail fast, naming each pod.
    ASSERT_TRUE(eventually(
        [&] {
            for (const AgentStatus& s : a.fleet().agents()) {
                if (s.rejected.empty()) {
                    return false;
                }
            }
            return true;
        },
        10s));
    for (const AgentStatus& s : a.fleet().agents()) {
        ASSERT_EQ(s.rejected.size(), 1u) << s.pod;
        EXPECT_EQ(s.rejected[0].revision, bad);
        EXPECT_EQ(s.rejected[0].key, "embed_model");
        EXPECT_NE(s.rejected[0].reason.find("type"), std::string::npos) << s.rejected[0].reason;
    }
    try {
        a.wait(after, WaitScope::fleet, 10s);
        FAIL() << "wait(fleet) passed while every agent refuses a value";
    } catch (const WaitError& e) {
        EXPECT_EQ(e.kind(), AdminError::Kind::rejected);
        EXPECT_EQ(e.agents().size(), 3u);
        for (const char* pod : {"pod0", "pod1", "pod2"}) {
            EXPECT_NE(std::string(e.what()).find(pod), std::string::npos) << e.what();
        }
    }
    const std::vector<std::string> redis_env = {
        "REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(redis.port()),
        std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey};
    auto env = redis_env;
    env.push_back("YUXI_CONFIG_SEGMENT=" + segment(0));
    CtlResult r = db_ctl({"set", "fast_model", R"("x")", "--wait-all"}, env);
    EXPECT_EQ(r.status, 7) << describe(r);
    EXPECT_NE(r.err.find("pod1 (config 'embed_model' at revision " + std::to_string(bad)),
              std::string::npos)
        << r.err;
    EXPECT_EQ(db_ctl({"wait", "--all", "--timeout", "5"}, env).status, 7);
    r = db_ctl({"agents"}, env);
    EXPECT_NE(r.out.find("refused config 'embed_model'"), std::string::npos) << r.out;
    // /metrics counts it, /readyz stays ready.
    for (const std::uint16_t port : http) {
        const std::string metrics = http_get(port, "/metrics");
        EXPECT_NE(metrics.find("yuxi_config_rejected_values_total{reason=\"schema\"} "),
                  std::string::npos)
            << metrics.substr(0, 400);
        EXPECT_NE(metrics.find("yuxi_config_rejected_keys 1"), std::string::npos);
        EXPECT_NE(http_get(port, "/readyz").find(" 200 "), std::string::npos);
    }
    // A valid write of the key clears it everywhere.
    const WriteResult fixed = a.set("embed_model", R"("bge-large")");
    a.wait(fixed.revision, WaitScope::fleet, 20s);
    for (const Client& c : clients) {
        EXPECT_EQ(c.get("embed_model"), R"("bge-large")") << c.name();
    }
    for (const AgentStatus& s : a.fleet().agents()) {
        EXPECT_TRUE(s.rejected.empty()) << s.pod;
    }
    EXPECT_EQ(db_ctl({"wait", "--all"}, env).status, 0);
}

TEST_F(FleetRejectionTest, AnAgentStartingOnAnInvalidValueLeavesTheKeyOut) {
    Admin a = admin();
    a.set_value_schema("embed_model", R"({"type":"string"})");
    pg_->exec("INSERT INTO system_configs (key, value) VALUES ('embed_model', '42'), ('x', '1')");
    const Client c = start_agent(0);
    ASSERT_TRUE(c.wait_for_revision(revision(), 20s));
    EXPECT_FALSE(c.get("embed_model"));
    EXPECT_EQ(c.get("x"), "1");
    EXPECT_TRUE(agents_[0]->log_contains("config key 'embed_model' at revision"));
}

TEST_F(AdminLibraryTest, TheFileWriterChecksAndReplacesTheFileAtomically) {
    const fs::path toml = dir_ / "base.toml";
    const fs::path schema = dir_ / "schema.json";
    {
        std::ofstream(toml) << "embed_model = \"bge-m3\"\n[model_names.p]\nname = \"P\"\n"
                               "base_url = \"http://p\"\nmodels = [\"a\"]\n";
        std::ofstream(schema) << json{{"v", 1},
                                      {"schemas",
                                       {{{"namespace", "config"},
                                         {"pattern", "model_names"},
                                         {"schema", json::parse(kProviders)}}}}}
                                     .dump();
    }
    ConfigFileWriter w(toml.string(), schema.string());
    EXPECT_THROW((void)w.apply({{{"model_names"}, R"({"p":{"models":["a"]}})"}}),
                 InvalidValueError);
    EXPECT_THROW((void)w.apply({{{"model_names", "q"}, R"({"name":"Q"})"}}), InvalidValueError);
    EXPECT_EQ(json::parse(w.read())["embed_model"], "bge-m3");
    EXPECT_TRUE(w.apply({{{"embed_model"}, R"("bge-large")"}, {{"top_k"}, "5"}}));
    EXPECT_FALSE(w.apply({{{"top_k"}, "5"}}));
    EXPECT_TRUE(w.apply({{{"top_k"}, std::nullopt}}));
    EXPECT_TRUE(
        w.apply({{{"model_names", "q"}, R"({"name":"Q","base_url":"http://q","models":["m"]})"}}));
    const json now = json::parse(w.read());
    EXPECT_EQ(now["embed_model"], "bge-large");
    EXPECT_FALSE(now.contains("top_k"));
    EXPECT_EQ(now["model_names"]["p"]["models"], json::array({"a"}));
    EXPECT_EQ(now["model_names"]["q"]["models"], json::array({"m"}));
    EXPECT_THROW((void)w.apply({{{"n"}, "null"}}), AdminError);  // TOML has no null
    EXPECT_THROW(ConfigFileWriter(toml.string(), (dir_ / "missing.json").string()), AdminError);
}

}  // namespace
}  // namespace yuxi::config::test
