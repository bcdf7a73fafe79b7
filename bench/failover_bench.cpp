// Failover: how long readers wait for the next write when a primary dies.
//
//   failover_bench [--runs N] [--writes N]
//
// Needs YUXI_TEST_DATABASE_URL (scripts/test-servers), redis-server and PostgreSQL 15's
// programs (initdb, pg_basebackup, pg_ctl; $YUXI_TEST_PG_BIN). Prints Markdown tables:
//
// 1. Redis Sentinel: a primary, a replica, 3 Sentinels (down-after-milliseconds 1000) and
//    3 agents that know only the Sentinels, defaults otherwise (a 30 s safety poll, so the
//    followers wait for Redis rather than poll PostgreSQL). SIGKILL the primary and write
//    one change to PostgreSQL at once; measured: kill → the Sentinels name the replica
//    (and it answers ROLE master), kill → all 3 segments serve the change, and promoted →
//    all segments. A fresh cluster and database per run.
// 2. PostgreSQL: a primary and a streaming standby, 3 direct agents on a multi-host URL
//    (target_session_attrs=read-write). Stop the primary (-m immediate), `pg_ctl promote
//    -w` the standby, write there the moment it returns; measured: promoted → all 3
//    segments, and kill → all. The next run makes a new standby of the new primary.
// 3. Commit → all 3 segments, and the writer's commit latency, with the standby
//    synchronous (synchronous_standby_names '*') and the writer's synchronous_commit at
//    `local` (asynchronous to the standby) against `remote_apply`, interleaved, same run.
#include <libpq-fe.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "integration/ha_servers.hpp"

namespace yuxi::config::bench {
namespace {

using test::PgNode;
using test::SentinelCluster;

double ms(Clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

std::vector<std::string> clean_environment() {
    return test::child_environment(
        {"DATABASE_URL", "CONFIG_MODE", "YUXI_CONFIG", "REDIS_", "POD_NAME", "LOG_"});
}

// N agents on one database URL with `extra` environment; stopped and their segments
// removed when it goes.
class Agents {
  public:
    Agents(int n, const std::string& url, const std::vector<std::string>& extra,
           const fs::path& dir, const std::string& tag) {
        for (int i = 0; i < n; ++i) {
            const std::string seg =
                "yuxi-failover-" + tag + "-" + std::to_string(i) + "-" + std::to_string(::getpid());
            unlink_segment(seg);
            leftovers().segments.insert(seg);
            segments_.push_back(seg);
            std::vector<std::string> env = clean_environment();
            env.insert(env.end(),
                       {"CONFIG_MODE=database", "DATABASE_URL=" + url,
                        "POD_NAME=" + tag + std::to_string(i), "YUXI_CONFIG_SEGMENT=" + seg,
                        "YUXI_CONFIG_HTTP=127.0.0.1:0", "LOG_LEVEL=info"});
            env.insert(env.end(), extra.begin(), extra.end());
            test::FileActions actions;
            actions.log_to(dir / (tag + std::to_string(i) + ".log"), test::LogMode::append);
            pids_.push_back(start_child({YUXI_AGENT_BIN}, env, actions));
        }
        for (const std::string& s : segments_) {
            clients_.push_back(open_segment(s, 60s, "logs in " + dir.string()));
        }
    }
    ~Agents() {
        clients_.clear();
        stop_agents(pids_, segments_);
    }
    Agents(const Agents&) = delete;
    Agents& operator=(const Agents&) = delete;

    // The moment every segment serves `value` for key `bench`; dies after `timeout`.
    Clock::time_point wait_value(const std::string& value, std::chrono::seconds timeout = 60s) {
        const auto deadline = Clock::now() + timeout;
        for (std::size_t i = 0; i < clients_.size();) {
            const auto v = clients_[i].snapshot().get("bench");
            if (v && *v == value) {
                ++i;
                continue;
            }
            if (Clock::now() > deadline) {
                die("agent " + std::to_string(i) + " never served bench = " + value);
            }
            (void)clients_[i].wait_for_change(clients_[i].revision(), 2ms);
        }
        return Clock::now();
    }

  private:
    std::vector<pid_t> pids_;
    std::vector<std::string> segments_;
    std::vector<Client> clients_;
};

void write_value(const std::string& url, const std::string& value) {
    PGconn* c = connect_or_die(url);
    exec_or_die(c, "UPDATE system_configs SET value = '" + value + "' WHERE key = 'bench'");
    PQfinish(c);
}

void print_row(const char* what, const std::vector<double>& v) {
    const Stats s = stats_of(v);
    std::printf("| %s | %zu | %.0f | %.0f | %.0f |\n", what, s.n, s.p50, s.p99, s.max);
}

void redis_failover(int runs, const fs::path& dir) {
    std::vector<double> promote, kill_to_all, promoted_to_all;
    for (int run = 0; run < runs; ++run) {
        SentinelCluster cluster;
        if (!cluster.start()) {
            die("cannot start the Sentinel cluster");
        }
        const std::string db =
            "yuxi_failover_r" + std::to_string(run) + "_" + std::to_string(::getpid());
        const std::string url = create_database(db);
        {
            PGconn* c = connect_or_die(url);
            apply_schema_with_bench_row(c);
            PQfinish(c);
        }
        {
            Agents agents(3, url,
                          {"REDIS_SENTINELS=" + cluster.sentinel_list(),
                           "REDIS_SENTINEL_MASTER=" + std::string(SentinelCluster::kMaster),
                           std::string("YUXI_CONFIG_SIGNING_KEY=") + test::kTestSigningKey},
                          dir, "redis" + std::to_string(run));
            write_value(url, "1");
            (void)agents.wait_value("1");
            std::this_thread::sleep_for(500ms);  // followers subscribed, the relay settled
            const auto t0 = Clock::now();
            cluster.primary().kill();
            write_value(url, "2");
            const std::uint16_t replica = cluster.replica().port();
            std::atomic<bool> stop{false};
            Clock::time_point promoted{};
            std::thread watch([&] {
                while (!stop && Clock::now() - t0 < 60s) {
                    if (cluster.master_port() == replica &&
                        SentinelCluster::connected_replicas(replica) >= 0) {
                        promoted = Clock::now();
                        return;
                    }
                    std::this_thread::sleep_for(5ms);
                }
            });
            const auto all = agents.wait_value("2");
            watch.join();
            stop = true;
            if (promoted == Clock::time_point{}) {
                die("the Sentinels never promoted the replica");
            }
            promote.push_back(ms(promoted - t0));
            kill_to_all.push_back(ms(all - t0));
            promoted_to_all.push_back(std::max(0.0, ms(all - promoted)));
        }
        drop_database(db);
        std::fprintf(stderr, "redis run %d: promoted %.0f ms, all %.0f ms\n", run, promote.back(),
                     kill_to_all.back());
    }
    std::printf("\n### Redis primary SIGKILLed (Sentinel, down-after-milliseconds %d)\n\n",
                SentinelCluster::kDownAfterMs);
    std::printf("| ms | runs | p50 | p99 | max |\n|---|---|---|---|---|\n");
    print_row("kill → replica promoted", promote);
    print_row("kill → all 3 segments serve the write", kill_to_all);
    print_row("promoted → all 3 segments", promoted_to_all);
}

// A standby of `primary`, or death.
std::unique_ptr<PgNode> standby_of(const PgNode& primary) {
    auto s = std::make_unique<PgNode>();
    if (!s->init_standby(primary)) {
        die("pg_basebackup / standby start failed");
    }
    return s;
}

void postgres_failover(int runs, const fs::path& dir) {
    auto primary = std::make_unique<PgNode>();
    if (!primary->init_primary()) {
        die("initdb / start failed (" + PgNode::bin_dir() + ")");
    }
    {
        PGconn* c = connect_or_die(primary->url());
        apply_schema_with_bench_row(c);
        PQfinish(c);
    }
    std::vector<double> promote_to_all, kill_to_all, promote_time;
    for (int run = 0; run < runs; ++run) {
        auto standby = standby_of(*primary);
        {
            Agents agents(3, test::multi_host_url({primary.get(), standby.get()}), {}, dir,
                          "pg" + std::to_string(run));
            write_value(primary->url(), std::to_string(run * 10 + 1));
            (void)agents.wait_value(std::to_string(run * 10 + 1));
            // The standby has it too: nothing is lost in this measurement.
            PGconn* p = connect_or_die(primary->url());
            const std::string lsn = scalar_or_die(p, "SELECT pg_current_wal_lsn()::text");
            PQfinish(p);
            PGconn* s = connect_or_die(standby->url());
            while (scalar_or_die(s, "SELECT pg_last_wal_replay_lsn() >= '" + lsn + "'") != "t") {
                std::this_thread::sleep_for(5ms);
            }
            PQfinish(s);
            const auto t0 = Clock::now();
            (void)primary->stop("immediate");
            if (!standby->promote()) {
                die("pg_ctl promote failed");
            }
            const auto t1 = Clock::now();
            const std::string v = std::to_string(run * 10 + 2);
            write_value(standby->url(), v);
            const auto all = agents.wait_value(v);
            promote_time.push_back(ms(t1 - t0));
            promote_to_all.push_back(ms(all - t1));
            kill_to_all.push_back(ms(all - t0));
            std::fprintf(stderr, "postgres run %d: promoted → all %.0f ms\n", run,
                         promote_to_all.back());
        }
        primary = std::move(standby);  // the old primary's directory goes with it
    }
    std::printf("\n### PostgreSQL primary stopped (-m immediate), standby promoted\n\n");
    std::printf("| ms | runs | p50 | p99 | max |\n|---|---|---|---|---|\n");
    print_row("kill → `pg_ctl promote -w` returned", promote_time);
    print_row("promoted → all 3 segments serve the next write", promote_to_all);
    print_row("kill → all 3 segments", kill_to_all);
}

void synchronous_commit_cost(int writes, const fs::path& dir) {
    PgNode primary;
    if (!primary.init_primary()) {
        die("initdb / start failed");
    }
    {
        PGconn* c = connect_or_die(primary.url());
        apply_schema_with_bench_row(c);
        exec_or_die(c, "ALTER SYSTEM SET synchronous_standby_names = '*'");
        exec_or_die(c, "SELECT pg_reload_conf()");
        PQfinish(c);
    }
    auto standby = standby_of(primary);
    Agents agents(3, primary.url(), {}, dir, "sync");
    PGconn* w = connect_or_die(primary.url());
    std::vector<double> commit[2], all[2];
    const char* modes[2] = {"local", "remote_apply"};
    for (int i = 0; i < 2 * writes; ++i) {
        const int m = i % 2;
        exec_or_die(w, std::string("SET synchronous_commit = ") + modes[m]);
        const std::string v = std::to_string(1000 + i);
        const auto t0 = Clock::now();
        exec_or_die(w, "UPDATE system_configs SET value = '" + v + "' WHERE key = 'bench'");
        const auto t1 = Clock::now();
        const auto done = agents.wait_value(v);
        commit[m].push_back(ms(t1 - t0) * 1000);
        all[m].push_back(ms(done - t0) * 1000);
    }
    PQfinish(w);
    std::printf("\n### Commit cost of a synchronous standby (%d writes each, interleaved)\n\n",
                writes);
    std::printf("| µs | writes | p50 | p99 | max |\n|---|---|---|---|---|\n");
    print_row("commit, synchronous_commit=local", commit[0]);
    print_row("commit, synchronous_commit=remote_apply", commit[1]);
    print_row("commit → all 3 segments, local", all[0]);
    print_row("commit → all 3 segments, remote_apply", all[1]);
}

}  // namespace
}  // namespace yuxi::config::bench

int main(int argc, char** argv) {
    using namespace yuxi::config::bench;
    int runs = 10;
    int writes = 200;
    parse_options(argc, argv, "usage: failover_bench [--runs N] [--writes N]",
                  [&](const std::string& name, const std::string& value) {
                      if (name == "--runs") {
                          runs = std::max(1, std::atoi(value.c_str()));
                      } else if (name == "--writes") {
                          writes = std::max(1, std::atoi(value.c_str()));
                      } else {
                          return false;
                      }
                      return true;
                  });
    (void)use_test_server();
    ::signal(SIGPIPE, SIG_IGN);
    const fs::path dir = yuxi::config::test::temp_dir("failover-bench");
    std::printf("failover_bench on %s, %u cores; agent logs in %s\n", cpu_model().c_str(),
                std::thread::hardware_concurrency(), dir.c_str());
    redis_failover(runs, dir);
    postgres_failover(runs, dir);
    synchronous_commit_cost(writes, dir);
    cleanup();
    return 0;
}
