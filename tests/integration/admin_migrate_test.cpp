// yuxi-configctl migrate and export against a real PostgreSQL, on the Yuxi-Know fixtures:
// the database ends up with exactly the entries file mode publishes, and exported files
// publish exactly the database's entries.
#include "admin_test_support.hpp"
#include "agent/file/file_source.hpp"
#include "core/toml_json.hpp"

namespace yuxi::config::test {
namespace {

using nlohmann::json;

// What the agent's file mode publishes for these files (its own code).
agent::EntryMap file_mode_entries(const std::vector<std::string>& config_files,
                                  const std::vector<agent::MetadataFile>& metadata) {
    agent::Options options;
    options.config_files = config_files;
    options.metadata = metadata;
    agent::FileSource source(options);
    for (std::size_t i = 0; i < source.files().size(); ++i) {
        EXPECT_TRUE(source.reload(i)) << source.files()[i].shown;
    }
    return source.entries();
}

std::vector<agent::MetadataFile> fixture_metadata() {
    const fs::path kb = samples() / "knowledge_base_data";
    return {{"global_metadata", (kb / "global_metadata.json").string()},
            {"metadata_milvus", (kb / "milvus_data/metadata_milvus.json").string()},
            {"metadata_lightrag", (kb / "lightrag_data/metadata_lightrag.json").string()}};
}

std::vector<std::string> fixture_configs() {
    return {(samples() / "config/base.toml").string(),
            (samples() / "config/custom_providers.toml").string()};
}

// The database's entries, each value as canonical JSON (file mode's form).
agent::EntryMap database_entries(Pg& pg) {
    agent::EntryMap out;
    for (const Row& r : pg.exec("SELECT key, value::text FROM system_configs")) {
        out.emplace(agent::EntryKey{Namespace::config, r[0]}, canonical(json::parse(r[1])));
    }
    for (const Row& r : pg.exec("SELECT key, content::text FROM global_metadata")) {
        out.emplace(agent::EntryKey{Namespace::metadata, r[0]}, canonical(json::parse(r[1])));
    }
    return out;
}

void expect_same_entries(const agent::EntryMap& got, const agent::EntryMap& want) {
    EXPECT_EQ(got.size(), want.size());
    for (const auto& [k, v] : want) {
        const auto it = got.find(k);
        if (it == got.end()) {
            ADD_FAILURE() << "missing key '" << k.key << "'";
        } else {
            EXPECT_EQ(it->second, v) << "key '" << k.key << "'";
        }
    }
    for (const auto& [k, v] : got) {
        EXPECT_TRUE(want.contains(k)) << "extra key '" << k.key << "'";
    }
}

using MigrateTest = AdminTest;

TEST_F(MigrateTest, LoadsTheFixturesExactlyAsFileModePublishesThem) {
    CtlResult r = db_ctl(fixture_args_with({"migrate", "--dry-run"}));
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("would insert config 'embed_model' (models)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("dry run: 16 would be inserted, 0 updated, 0 unchanged; nothing was "
                         "written"),
              std::string::npos)
        << r.out;
    EXPECT_EQ(revision(), 0u);
    EXPECT_EQ(pg_->number("SELECT count(*) FROM system_configs"), 0u);

    r = db_ctl(fixture_args_with({"migrate"}));
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("16 inserted, 0 updated, 0 unchanged (revision 16)"), std::string::npos)
        << r.out;
    expect_same_entries(database_entries(*pg_),
                        file_mode_entries(fixture_configs(), fixture_metadata()));

    // custom_providers.toml is layered over base.toml, as file mode does.
    const json providers = json::parse(
        pg_->scalar("SELECT value::text FROM system_configs WHERE key = 'model_names'"));
    EXPECT_TRUE(providers.contains("openai"));
    EXPECT_TRUE(providers.contains("local-vllm"));

    const std::map<std::string, std::string> categories = {{"save_dir", "basic"},
                                                           {"model_dir", "basic"},
                                                           {"enable_reranker", "features"},
                                                           {"enable_content_guard", "features"},
                                                           {"enable_web_search", "features"},
                                                           {"enable_content_guard_llm", "features"},
                                                           {"default_model", "models"},
                                                           {"fast_model", "models"},
                                                           {"embed_model", "models"},
                                                           {"reranker", "models"},
                                                           {"content_guard_llm_model", "models"},
                                                           {"model_names", "models"},
                                                           {"default_agent_id", "agents"}};
    for (const Row& row : pg_->exec("SELECT key, coalesce(category, 'NULL') FROM system_configs")) {
        ASSERT_TRUE(categories.contains(row[0])) << row[0];
        EXPECT_EQ(row[1], categories.at(row[0])) << row[0];
    }

    // Again: nothing to do, no revision drawn.
    r = db_ctl(fixture_args_with({"migrate"}));
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_EQ(r.out, "0 inserted, 0 updated, 16 unchanged\n");
    EXPECT_EQ(revision(), 16u);

    // v0.6's base.toml layered on top: its 7 new values and 6 new keys are written.
    r = db_ctl(fixture_args_with(
        {"migrate", "--json"}, {"--config-file", (admin_fixtures() / "base.v0.6.toml").string()}));
    ASSERT_EQ(r.status, 0) << describe(r);
    const json j = json::parse(r.out);
    EXPECT_EQ(j["dry_run"], false);
    EXPECT_EQ(j["inserted"], 6);  // the sandbox_* keys
    EXPECT_EQ(j["updated"], 7);
    EXPECT_EQ(j["unchanged"], 16 - 7);
    for (const json& c : j["changes"]) {
        if (c["key"].get<std::string>().starts_with("sandbox_")) {
            EXPECT_EQ(c["category"], "sandbox");
            EXPECT_EQ(c["action"], "insert");
        }
    }
    EXPECT_EQ(pg_->scalar("SELECT category FROM system_configs WHERE key = "
                          "'sandbox_exec_timeout_seconds'"),
              "sandbox");
}

TEST_F(MigrateTest, BadFilesChangeNothing) {
    const fs::path dir = temp_dir("admin-migrate");
    std::ofstream(dir / "bad.toml") << "a = 1\nb = [1,\n";
    CtlResult r = db_ctl({"migrate", "--config-file", (dir / "bad.toml").string()});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_NE(r.err.find("bad.toml:"), std::string::npos) << r.err;
    r = db_ctl({"migrate", "--config-file", (dir / "absent.toml").string()});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_EQ(db_ctl({"migrate", "--metadata", "no_path"}).status, 2);
    EXPECT_EQ(db_ctl({"migrate"}).status, 2);
    EXPECT_EQ(revision(), 0u);
    fs::remove_all(dir);
}

class ExportTest : public AdminTest {
  protected:
    void SetUp() override {
        AdminTest::SetUp();
        if (!IsSkipped()) {
            dir_ = temp_dir("admin-export");
        }
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::vector<std::string> export_args() {
        return {"export",
                "--config-file",
                (dir_ / "base.toml").string(),
                "--metadata",
                "global_metadata=" + (dir_ / "global_metadata.json").string(),
                "--metadata",
                "metadata_milvus=" + (dir_ / "metadata_milvus.json").string(),
                "--metadata",
                "metadata_lightrag=" + (dir_ / "metadata_lightrag.json").string()};
    }
    std::vector<agent::MetadataFile> exported_metadata() {
        return {{"global_metadata", (dir_ / "global_metadata.json").string()},
                {"metadata_milvus", (dir_ / "metadata_milvus.json").string()},
                {"metadata_lightrag", (dir_ / "metadata_lightrag.json").string()}};
    }

    fs::path dir_;
};

TEST_F(ExportTest, RoundTripPreservesEveryValue) {
    ASSERT_EQ(db_ctl(fixture_args_with({"migrate"})).status, 0);
    // Values TOML writers and readers get wrong easily.
    const std::vector<std::pair<std::string, std::string>> odd = {
        {"servers", R"([{"name": "a", "ports": [1, 2]}, {"name": "b", "tags": {}}])"},
        {"mixed", R"([1, "x", {"y": true}, [2.5, []], []])"},
        {"numbers", R"({"f": 0.1, "pi": 3.141592653589793, "tiny": 1.5e-07, "neg0": -0.0,
                        "big": 9007199254740993, "min": -9223372036854775808, "one": 1.0})"},
        {"text", R"("line1\nline2\t\"q\" \\ 中文 \u0001 ''' \"\"\" ")"},
        {"dotted.key with spaces", R"({"a.b": {"c d": "e"}, "": 1})"},
        {"date_like", R"("1979-05-27T07:32:00Z")"},
        {"empty", "{}"},
    };
    for (const auto& [k, v] : odd) {
        const CtlResult r = db_ctl({"set", k, v});
        ASSERT_EQ(r.status, 0) << k << ": " << describe(r);
    }
    const std::uint64_t before = revision();

    CtlResult r = db_ctl(export_args());
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("exported revision " + std::to_string(before)), std::string::npos);
    EXPECT_TRUE(r.err.empty()) << r.err;

    // The agent's file-mode code on the exported files gives the database's entries.
    const agent::EntryMap want = database_entries(*pg_);
    expect_same_entries(file_mode_entries({(dir_ / "base.toml").string()}, exported_metadata()),
                        want);
    // And migrating them back changes nothing.
    r = db_ctl({"migrate", "--config-file", (dir_ / "base.toml").string(), "--metadata",
                "global_metadata=" + (dir_ / "global_metadata.json").string()});
    ASSERT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("0 inserted, 0 updated,"), std::string::npos) << r.out;
    EXPECT_EQ(revision(), before);
    // No temporary file is left behind.
    for (const auto& e : fs::directory_iterator(dir_)) {
        EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
    }
}

TEST_F(ExportTest, ValuesTomlCannotHoldFailAndWriteNothing) {
    ASSERT_EQ(db_ctl({"set", "fine", "1"}).status, 0);
    ASSERT_EQ(db_ctl({"set", "holes", R"({"a": [1, null]})"}).status, 0);
    std::ofstream(dir_ / "base.toml") << "previous = true\n";
    CtlResult r = db_ctl({"export", "--config-file", (dir_ / "base.toml").string()});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_NE(r.err.find("config 'holes.a[1]' is null"), std::string::npos) << r.err;
    EXPECT_EQ(read_text(dir_ / "base.toml"), "previous = true\n");

    ASSERT_EQ(db_ctl({"delete", "holes"}).status, 0);
    ASSERT_EQ(db_ctl({"set", "huge", "18446744073709551615"}).status, 0);
    r = db_ctl({"export", "--config-file", (dir_ / "base.toml").string()});
    EXPECT_EQ(r.status, 2) << describe(r);
    EXPECT_NE(r.err.find("config 'huge'"), std::string::npos) << r.err;

    // A metadata document that is not there: exit 1, nothing written.
    ASSERT_EQ(db_ctl({"delete", "huge"}).status, 0);
    r = db_ctl({"export", "--config-file", (dir_ / "base.toml").string(), "--metadata",
                "nothing=" + (dir_ / "nothing.json").string()});
    EXPECT_EQ(r.status, 1) << describe(r);
    EXPECT_EQ(read_text(dir_ / "base.toml"), "previous = true\n");
    EXPECT_FALSE(fs::exists(dir_ / "nothing.json"));
}

// The same entries in a segment, whether an agent reads the database or the exported files.
TEST_F(ExportTest, FileModeOnExportedFilesPublishesWhatDatabaseModeDoes) {
    ASSERT_EQ(db_ctl(fixture_args_with({"migrate"})).status, 0);
    ASSERT_EQ(db_ctl(export_args()).status, 0);

    const std::string db_segment = unique_segment("export-db");
    const std::string file_segment = unique_segment("export-file");
    unlink_segment(db_segment);
    unlink_segment(file_segment);
    Agent db_agent;
    db_agent.start(db_->url(), db_segment, dir_ / "db-agent.log");
    Agent file_agent;
    std::vector<std::string> args = {"--config-file", (dir_ / "base.toml").string()};
    for (const agent::MetadataFile& m : exported_metadata()) {
        args.push_back("--metadata");
        args.push_back(m.name + "=" + m.path);
    }
    file_agent.spawn(
        args,
        {"CONFIG_MODE=file", "YUXI_CONFIG_SEGMENT=" + file_segment, "YUXI_CONFIG_HTTP=127.0.0.1:0"},
        dir_ / "file-agent.log");
    auto from_db = open_when_ready(db_segment);
    auto from_files = open_when_ready(file_segment);
    ASSERT_TRUE(from_db) << db_agent.log();
    ASSERT_TRUE(from_files) << file_agent.log();
    ASSERT_TRUE(from_db->wait_for_revision(revision(), 20s));
    ASSERT_TRUE(until_published(*from_files, [&] {
        return from_files->snapshot().get("model_names").has_value() &&
               from_files->metadata("metadata_lightrag").has_value();
    }));

    const Snapshot a = from_db->snapshot();
    const Snapshot b = from_files->snapshot();
    for (const Namespace ns : {Namespace::config, Namespace::metadata}) {
        const EntryMap got_db = segment_entries(a, ns);
        const EntryMap got_files = segment_entries(b, ns);
        EXPECT_EQ(got_db.size(), got_files.size());
        EXPECT_EQ(got_db.size(), ns == Namespace::config ? 13u : 3u);
        for (const auto& [k, v] : got_db) {
            const auto it = got_files.find(k);
            ASSERT_NE(it, got_files.end()) << k;
            // Database mode publishes jsonb's text, file mode its canonical dump: the same JSON.
            EXPECT_EQ(json::parse(it->second.first), json::parse(v.first)) << k;
        }
    }
    db_agent.kill();
    file_agent.kill();
    unlink_segment(db_segment);
    unlink_segment(file_segment);
}

}  // namespace
}  // namespace yuxi::config::test
