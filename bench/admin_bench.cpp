// The admin library's costs, each beside its peer in the same run (docs/benchmarks.md,
// "The admin library"):
//
//   admin_bench [--sets N] [--rounds N] [--saves N]
//
// 1. Admin::set of one key (validated against its schema, the full Yuxi-Know schema set
//    loaded) against a bare prepared `UPDATE system_configs SET value = $2 WHERE key = $1`
//    on its own connection, both over loopback, interleaved in rounds.
// 2. Admin::set_many of 100 keys against 100 single Admin::set calls.
// 3. Validation of every value of the fixture config against the full Yuxi-Know schema
//    (bench/fixtures/yuxi_know_schema.json, a pydantic model's schema imported as rules):
//    the cost per value, parsed JSON and JSON text.
// 4. File mode: ConfigFileWriter::apply of one key of base.toml → the new value visible in
//    the segment of a file-mode agent watching it (p50/p99).
//
// Needs YUXI_TEST_DATABASE_URL (scripts/test-servers); creates and drops its own database.
#include <libpq-fe.h>
#include <signal.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench_support.hpp"
#include "core/toml_json.hpp"
#include "core/value_schema.hpp"
#include "yuxi/config/admin.hpp"
#include "yuxi/config/client.hpp"

namespace {

using namespace yuxi::config::bench;
using namespace yuxi::config;
using nlohmann::json;
namespace test = yuxi::config::test;

double us_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void row(const char* what, const Stats& s) {
    std::printf("| %s | %zu | %.1f | %.1f | %.1f | %.1f |\n", what, s.n, s.p50, s.p99, s.mean,
                s.max);
}

std::string read_fixture(const std::string& name) {
    return read_text(fs::path(YUXI_BENCH_FIXTURES) / name);
}

// The fixture config (samples' base.toml over custom_providers.toml) as file mode reads it.
json fixture_config() {
    json merged = json::object();
    for (const char* f : {"config/base.toml", "config/custom_providers.toml"}) {
        const fs::path p = fs::path(YUXI_SAMPLES_DIR) / "saves" / f;
        auto doc = parse_toml_document(read_text(p), p.string());
        if (!doc) {
            die(doc.reason().message);
        }
        merge_json(merged, *doc);
    }
    return merged;
}

void bench_set(Admin& admin, PGconn* bare, int sets, int rounds) {
    PQclear(
        PQprepare(bare, "bare", "UPDATE system_configs SET value = $2 WHERE key = $1", 2, nullptr));
    PQclear(PQprepare(bare, "fn",
                      "SELECT status, revision FROM yuxi_config_write('config', $1, $2::jsonb, "
                      "NULL, NULL, NULL, NULL)",
                      2, nullptr));
    const auto exec = [&](const char* name, const std::string& v) {
        const char* values[] = {"bench", v.c_str()};
        PGresult* res = PQexecPrepared(bare, name, 2, values, nullptr, nullptr, 0);
        const ExecStatusType st = PQresultStatus(res);
        PQclear(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            die(std::string(name) + " failed: " + PQerrorMessage(bare));
        }
    };
    // Interleaved one by one, so that the machine's load (shared, see Machine) falls on
    // all three alike.
    std::vector<double> ours;
    std::vector<double> theirs;
    std::vector<double> fn;
    int n = 0;
    for (int i = 0; i < sets * rounds; ++i) {
        const std::string v = "\"v-" + std::to_string(++n) + "\"";
        auto t0 = Clock::now();
        (void)admin.set("embed_model", v);
        ours.push_back(us_since(t0));
        t0 = Clock::now();
        exec("bare", v);
        theirs.push_back(us_since(t0));
        const std::string w = "\"w-" + std::to_string(n) + "\"";
        t0 = Clock::now();
        exec("fn", w);
        fn.push_back(us_since(t0));
    }
    const Stats a = stats_of(ours);
    const Stats b = stats_of(theirs);
    std::printf("\n### Admin::set vs a bare prepared UPDATE (µs)\n\n");
    std::printf("| path | n | p50 | p99 | mean | max |\n|---|---:|---:|---:|---:|---:|\n");
    row("`Admin::set` (validated, one round trip)", a);
    row("bare prepared `UPDATE`", b);
    row("`yuxi_config_write` prepared by hand (the server's share)", stats_of(fn));
    std::printf("\nratio Admin::set / UPDATE: p50 %.2fx, p99 %.2fx, mean %.2fx\n", a.p50 / b.p50,
                a.p99 / b.p99, a.mean / b.mean);
}

void bench_set_many(Admin& admin, int rounds) {
    std::vector<double> many;
    std::vector<double> singles;
    for (int r = 0; r < rounds; ++r) {
        std::vector<Write> writes;
        for (int i = 0; i < 100; ++i) {
            writes.push_back({"k" + std::to_string(i), std::to_string(r * 1000 + i), {}});
        }
        auto t0 = Clock::now();
        (void)admin.set_many(writes);
        many.push_back(us_since(t0) / 1000.0);
        t0 = Clock::now();
        for (int i = 0; i < 100; ++i) {
            (void)admin.set("k" + std::to_string(i), std::to_string(r * 1000 + 500 + i));
        }
        singles.push_back(us_since(t0) / 1000.0);
    }
    const Stats a = stats_of(many);
    const Stats b = stats_of(singles);
    std::printf("\n### 100 keys: set_many vs 100 sets (ms per 100 keys)\n\n");
    std::printf("| path | n | p50 | p99 | mean | max |\n|---|---:|---:|---:|---:|---:|\n");
    row("`set_many` of 100 keys (one transaction)", a);
    row("100 × `set`", b);
    std::printf("\nratio 100 sets / set_many: p50 %.1fx\n", b.p50 / a.p50);
}

void bench_validation() {
    auto rules = rules_from_model_schema(read_fixture("yuxi_know_schema.json"));
    if (!rules) {
        die(rules.reason());
    }
    auto schemas = ValueSchemas::compile(*rules);
    if (!schemas) {
        die(schemas.reason());
    }
    const json config = fixture_config();
    std::vector<std::pair<std::string, json>> values;
    std::vector<std::pair<std::string, std::string>> texts;
    for (const auto& [k, v] : config.items()) {
        if (schemas->rule_for(Namespace::config, k) != nullptr) {
            values.emplace_back(k, v);
            texts.emplace_back(k, v.dump());
        }
    }
    const int iterations = 2000;
    std::vector<double> parsed;
    std::vector<double> text;
    std::vector<double> providers;
    for (int r = 0; r < 15; ++r) {
        auto t0 = Clock::now();
        for (int i = 0; i < iterations; ++i) {
            for (const auto& [k, v] : values) {
                if (schemas->validate(Namespace::config, k, v)) {
                    die("a fixture value breaks its schema: " + k);
                }
            }
        }
        parsed.push_back(us_since(t0) / (iterations * static_cast<double>(values.size())));
        t0 = Clock::now();
        for (int i = 0; i < iterations; ++i) {
            for (const auto& [k, v] : texts) {
                (void)schemas->validate_text(Namespace::config, k, v);
            }
        }
        text.push_back(us_since(t0) / (iterations * static_cast<double>(texts.size())));
        const json& names = config["model_names"];
        t0 = Clock::now();
        for (int i = 0; i < iterations; ++i) {
            (void)schemas->validate(Namespace::config, "model_names", names);
        }
        providers.push_back(us_since(t0) / iterations);
    }
    std::printf("\n### Validation against the full Yuxi-Know schema (µs per value)\n\n");
    std::printf(
        "%zu rules; %zu values of the fixture config (%zu bytes of JSON for "
        "model_names, %zu providers)\n\n",
        rules->size(), values.size(), config["model_names"].dump().size(),
        config["model_names"].size());
    std::printf("| what | runs | p50 | p99 | mean | max |\n|---|---:|---:|---:|---:|---:|\n");
    row("per value, parsed (`validate`)", stats_of(parsed));
    row("per value, JSON text (`validate_text`: parse + validate)", stats_of(text));
    row("`model_names` alone, parsed", stats_of(providers));
}

void bench_file_save(int saves) {
    const fs::path dir = test::temp_dir("admin-bench");
    fs::copy(fs::path(YUXI_SAMPLES_DIR) / "saves", dir / "saves", fs::copy_options::recursive);
    const fs::path base = dir / "saves/config/base.toml";
    const std::string segment = "yuxi-admin-bench-" + std::to_string(::getpid());
    const auto env = test::child_environment({"CONFIG_MODE", "YUXI_CONFIG"}, {});
    test::FileActions actions;
    actions.write_to(2, dir / "agent.log", test::LogMode::truncate);
    const pid_t agent = start_child(
        {YUXI_AGENT_BIN, "--segment", segment, "--config-file", base.string(), "--metadata",
         "global_metadata=" + (dir / "saves/knowledge_base_data/global_metadata.json").string(),
         "--http", "127.0.0.1:0", "--log-level", "warn"},
        env, actions);
    leftovers().segments.insert(segment);
    const Client c = open_segment(segment);
    ConfigFileWriter writer(base.string());
    std::vector<double> seen;
    for (int i = 0; i < saves; ++i) {
        const std::string v = "\"model-" + std::to_string(i) + "\"";
        const auto t0 = Clock::now();
        (void)writer.apply({{{"embed_model"}, v}});
        while (c.get("embed_model") != v) {
            (void)c.wait_for_change(c.revision(), 1s);
            if (us_since(t0) > 10e6) {
                die("the agent did not publish a save within 10 s");
            }
        }
        seen.push_back(us_since(t0) / 1000.0);
    }
    ::kill(agent, SIGTERM);
    reap_child(agent);
    std::printf("\n### File mode: ConfigFileWriter::apply → visible in the segment (ms)\n\n");
    std::printf("| path | n | p50 | p99 | mean | max |\n|---|---:|---:|---:|---:|---:|\n");
    row("apply (flock, rewrite, fsync, rename) → agent (inotify, 50 ms debounce) → segment",
        stats_of(seen));
    std::error_code ec;
    fs::remove_all(dir, ec);
}

}  // namespace

int main(int argc, char** argv) {
    int sets = 200;
    int rounds = 10;
    int saves = 200;
    parse_options(argc, argv, "usage: admin_bench [--sets N] [--rounds N] [--saves N]",
                  [&](const std::string& name, const std::string& value) {
                      if (name == "--sets") {
                          sets = std::stoi(value);
                      } else if (name == "--rounds") {
                          rounds = std::stoi(value);
                      } else if (name == "--saves") {
                          saves = std::stoi(value);
                      } else {
                          return false;
                      }
                      return true;
                  });
    use_test_server();
    const std::string url = create_database("yuxi_admin_bench_" + std::to_string(::getpid()));
    PGconn* bare = connect_or_die(url);
    apply_schema_with_bench_row(bare);
    AdminOptions options;
    options.database_url = url;
    Admin admin(options);
    (void)admin.import_value_schemas(read_fixture("yuxi_know_schema.json"));
    (void)admin.set("embed_model", "\"warm\"");
    std::printf("# admin_bench on %s\n", cpu_model().c_str());
    bench_set(admin, bare, sets, rounds);
    bench_set_many(admin, rounds);
    bench_validation();
    bench_file_save(saves);
    PQfinish(bare);
    cleanup();
    return 0;
}
