// Database mode's propagation, side by side with its floor.
//
//   propagation_bench [--updates N] [--rows N] [--startup-runs N] [--agent-log-level L]
//
// Needs a PostgreSQL: YUXI_TEST_DATABASE_URL (a superuser; scripts/test-servers gives one).
// It creates a database of its own (dropped at the end), applies deploy/sql, and starts
// the real yuxi-config-agent on it. Then, printing Markdown tables:
//
// 1. Propagation: an UPDATE of one config row, from the moment the UPDATE is sent to the
//    moment the new value is visible (a) in the agent's segment, to a reader sleeping in
//    Client::wait_for_change, and (b) to the floor: a bare libpq client that LISTENs on
//    the same channel, takes the NOTIFY, and fetches the changed row from the log by the
//    revision the payload names — the least any PostgreSQL-fed cache has to do. Measured
//    three ways: both at once (each update seen by both), the agent alone (the floor not
//    listening) and the floor alone (the agent stopped with SIGSTOP). Updates are sent
//    one at a time, each after both observers saw the previous one.
// 2. Reads: a prepared `SELECT value FROM system_configs WHERE key = $1` over loopback
//    against Client::get of the same key.
// 3. Start-up: a fresh agent on 100,000 rows, from its start to the segment at the
//    database's revision, and the agent's own query and publish times.
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_support.hpp"
#include "yuxi/config/client.hpp"

namespace {

using namespace yuxi::config::bench;
using yuxi::config::Client;
namespace test = yuxi::config::test;

// The agent in database mode on `url`, in our environment less what would configure it;
// its log (stderr) in `log`.
class AgentProcess {
  public:
    void start(const std::string& url, const std::string& segment, const fs::path& log,
               const std::string& level) {
        const std::vector<std::string> argv = {
            YUXI_AGENT_BIN, "--mode", "database", "--segment", segment, "--log-level", level};
        const auto env = test::child_environment({"DATABASE_URL", "CONFIG_MODE", "YUXI_CONFIG"},
                                                 {"DATABASE_URL=" + url});
        test::FileActions actions;
        actions.write_to(2, log, test::LogMode::truncate);
        pid_ = start_child(argv, env, actions);
    }
    void signal(int sig) const { ::kill(pid_, sig); }
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGCONT);
            ::kill(pid_, SIGTERM);
            reap_child(pid_);
            pid_ = -1;
        }
    }
    ~AgentProcess() { stop(); }

  private:
    pid_t pid_ = -1;
};

// The floor: LISTEN, wait for a notification, fetch the changed row from the log by the
// payload's revision. Records when it has the value it was told to expect.
class Floor {
  public:
    explicit Floor(const std::string& url) : conn_(connect_or_die(url)) {
        PGresult* r = PQprepare(conn_, "fetch",
                                "SELECT new_value::text FROM yuxi_config_changes "
                                "WHERE revision = $1",
                                1, nullptr);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            die(std::string("prepare: ") + PQerrorMessage(conn_));
        }
        PQclear(r);
        thread_ = std::thread([this] { run(); });
    }
    ~Floor() {
        stop_ = true;
        thread_.join();
        PQfinish(conn_);
    }
    void listen(bool on) {
        listening_ = on;
        pending_ = true;
        while (pending_) {
            std::this_thread::sleep_for(1ms);
        }
    }
    std::atomic<long> expect{-1};
    std::atomic<long> seen{-1};
    std::atomic<std::int64_t> seen_ns{0};

  private:
    void run() {
        bool on = false;
        while (!stop_) {
            if (pending_) {
                if (listening_ != on) {
                    exec_or_die(conn_, listening_ ? "LISTEN yuxi_config" : "UNLISTEN yuxi_config");
                    on = listening_;
                }
                pending_ = false;
            }
            pollfd p{PQsocket(conn_), POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) {
                continue;
            }
            PQconsumeInput(conn_);
            while (PGnotify* n = PQnotifies(conn_)) {
                const std::string rev = n->extra;
                PQfreemem(n);
                const char* params[] = {rev.c_str()};
                PGresult* r = PQexecPrepared(conn_, "fetch", 1, params, nullptr, nullptr, 0);
                if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
                    const long v = std::strtol(PQgetvalue(r, 0, 0), nullptr, 10);
                    if (v == expect.load()) {
                        seen_ns = Clock::now().time_since_epoch().count();
                        seen = v;
                        seen.notify_all();
                    }
                }
                PQclear(r);
            }
        }
    }

    PGconn* conn_;
    std::atomic<bool> stop_{false};
    std::atomic<bool> listening_{false};
    std::atomic<bool> pending_{false};
    std::thread thread_;
};

// A reader of the segment that sleeps on its futex until the value it expects appears.
class SegmentObserver {
  public:
    SegmentObserver(const std::string& segment, std::string key)
        : client_(open_segment(segment)), key_(std::move(key)) {
        thread_ = std::thread([this] { run(); });
    }
    ~SegmentObserver() {
        stop_ = true;
        thread_.join();
    }
    std::atomic<long> expect{-1};
    std::atomic<long> seen{-1};
    std::atomic<std::int64_t> seen_ns{0};

  private:
    void run() {
        while (!stop_) {
            const std::uint64_t rev = client_.revision();
            const long want = expect.load();
            if (want >= 0 && seen.load() != want) {
                const auto v = client_.get(key_);
                if (v && std::strtol(v->c_str(), nullptr, 10) == want) {
                    seen_ns = Clock::now().time_since_epoch().count();
                    seen = want;
                    seen.notify_all();
                    continue;
                }
            }
            (void)client_.wait_for_change(rev, 20ms);
        }
    }

    Client client_;
    std::string key_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

bool wait_seen(std::atomic<long>& seen, long want, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (seen.load() != want) {
        if (Clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(20us);
    }
    return true;
}

struct Phase {
    std::vector<double> agent_us, floor_us, update_us;
};

// Sends `n` UPDATEs, one at a time, and times when each observer saw it.
Phase run_phase(PGconn* writer, long& counter, int n, SegmentObserver* agent, Floor* floor) {
    Phase out;
    for (int i = 0; i < n; ++i) {
        const long v = ++counter;
        if (agent != nullptr) {
            agent->expect = v;
        }
        if (floor != nullptr) {
            floor->expect = v;
        }
        const std::string sql =
            "UPDATE system_configs SET value = '" + std::to_string(v) + "' WHERE key = 'bench'";
        const auto t0 = Clock::now();
        exec_or_die(writer, sql);
        const auto t1 = Clock::now();
        out.update_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        const std::int64_t t0_ns = t0.time_since_epoch().count();
        if (agent != nullptr) {
            if (!wait_seen(agent->seen, v, 10s)) {
                die("the agent did not publish update " + std::to_string(v));
            }
            out.agent_us.push_back(static_cast<double>(agent->seen_ns.load() - t0_ns) / 1e3);
        }
        if (floor != nullptr) {
            if (!wait_seen(floor->seen, v, 10s)) {
                die("the floor did not see update " + std::to_string(v));
            }
            out.floor_us.push_back(static_cast<double>(floor->seen_ns.load() - t0_ns) / 1e3);
        }
        std::this_thread::sleep_for(200us);  // let both sides go idle, as between admin writes
    }
    return out;
}

void print_row(const char* what, const Stats& s) {
    std::printf("| %-44s | %6zu | %8.1f | %8.1f | %8.1f | %8.1f |\n", what, s.n, s.p50, s.p99,
                s.p999, s.max);
}

}  // namespace

int main(int argc, char** argv) {
    int updates = 2000;
    int rows = 100000;
    int startup_runs = 3;
    std::string level = "info";
    parse_options(argc, argv,
                  "usage: propagation_bench [--updates N] [--rows N] [--startup-runs N] "
                  "[--agent-log-level L]",
                  [&](const std::string& name, const std::string& value) {
                      if (name == "--updates") {
                          updates = std::stoi(value);
                      } else if (name == "--rows") {
                          rows = std::stoi(value);
                      } else if (name == "--startup-runs") {
                          startup_runs = std::stoi(value);
                      } else if (name == "--agent-log-level") {
                          level = value;
                      } else {
                          return false;
                      }
                      return true;
                  });
    (void)use_test_server();
    const std::string segment = "yuxi-bench-prop-" + std::to_string(::getpid());
    const fs::path log = fs::temp_directory_path() / (segment + ".log");
    const std::string url = create_database("yuxi_bench_" + std::to_string(::getpid()));
    PGconn* writer = connect_or_die(url);
    apply_schema_with_bench_row(writer);

    std::printf("# propagation_bench: %s, %u hardware threads; PostgreSQL %s over loopback\n\n",
                cpu_model().c_str(), std::thread::hardware_concurrency(),
                scalar_or_die(writer, "SHOW server_version").c_str());

    unlink_segment(segment);
    AgentProcess agent;
    agent.start(url, segment, log, level);
    long counter = 0;
    Phase both, agent_only, floor_only;
    double get_ns = 0, select_us_p50 = 0, select_us_mean = 0;
    {
        SegmentObserver observer(segment, "bench");
        Floor floor(url);
        floor.listen(true);
        (void)run_phase(writer, counter, 200, &observer, &floor);  // warm-up
        both = run_phase(writer, counter, updates, &observer, &floor);
        floor.listen(false);
        agent_only = run_phase(writer, counter, updates / 2, &observer, nullptr);
        floor.listen(true);
        agent.signal(SIGSTOP);
        floor_only = run_phase(writer, counter, updates / 2, nullptr, &floor);
        agent.signal(SIGCONT);
        floor.listen(false);

        // Reads: a prepared SELECT over loopback against Client::get.
        PGresult* r =
            PQprepare(writer, "get", "SELECT value FROM system_configs WHERE key = $1", 1, nullptr);
        PQclear(r);
        std::vector<double> sel;
        const char* params[] = {"bench"};
        for (int i = 0; i < 20000; ++i) {
            const auto t0 = Clock::now();
            r = PQexecPrepared(writer, "get", 1, params, nullptr, nullptr, 0);
            const auto t1 = Clock::now();
            if (PQresultStatus(r) != PGRES_TUPLES_OK) {
                die("prepared SELECT failed");
            }
            PQclear(r);
            sel.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
        const Stats s = stats_of(sel);
        select_us_p50 = s.p50;
        select_us_mean = s.mean;
        Client c = open_segment(segment);
        std::size_t bytes = 0;
        constexpr int kGets = 2000000;
        const auto t0 = Clock::now();
        for (int i = 0; i < kGets; ++i) {
            bytes += c.get("bench")->size();
        }
        get_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / kGets;
        if (bytes == 0) {
            die("no value");
        }
    }
    agent.stop();

    std::printf("## Propagation: UPDATE sent to new value visible (microseconds)\n\n");
    std::printf("| %-44s | %6s | %8s | %8s | %8s | %8s |\n", "path", "n", "p50", "p99", "p99.9",
                "max");
    std::printf("|%s|-------:|---------:|---------:|---------:|---------:|\n",
                std::string(46, '-').c_str());
    const Stats ab = stats_of(both.agent_us), fb = stats_of(both.floor_us);
    const Stats aa = stats_of(agent_only.agent_us), ff = stats_of(floor_only.floor_us);
    print_row("agent: in the segment (both listening)", ab);
    print_row("floor: LISTEN + fetch (both listening)", fb);
    print_row("agent: in the segment (alone)", aa);
    print_row("floor: LISTEN + fetch (alone, agent stopped)", ff);
    print_row("the UPDATE's own round trip (commit)", stats_of(both.update_us));
    std::printf("\nagent / floor, same run (both listening): p50 %.2fx, p99 %.2fx\n",
                ab.p50 / fb.p50, ab.p99 / fb.p99);
    std::printf("agent alone / floor alone:                p50 %.2fx, p99 %.2fx\n\n",
                aa.p50 / ff.p50, aa.p99 / ff.p99);

    std::printf("## Reads of one key\n\n");
    std::printf("| path | latency |\n|---|---:|\n");
    std::printf(
        "| prepared `SELECT value FROM system_configs WHERE key = $1`, loopback | "
        "p50 %.1f µs, mean %.1f µs |\n",
        select_us_p50, select_us_mean);
    std::printf("| `Client::get` (copy out of the segment) | %.1f ns |\n", get_ns);
    std::printf("\nratio (SELECT p50 / Client::get): %.0fx\n\n", select_us_p50 * 1000 / get_ns);

    // Start-up on `rows` rows.
    exec_or_die(writer,
                "INSERT INTO system_configs (key, value, category) SELECT 'key_' || g, "
                "jsonb_build_object('n', g, 'name', 'value ' || g), 'basic' "
                "FROM generate_series(1, " +
                    std::to_string(rows) + ") g");
    exec_or_die(writer, "VACUUM ANALYZE system_configs");
    const std::uint64_t rev = std::stoull(scalar_or_die(
        writer,
        "SELECT greatest(coalesce((SELECT max(revision) FROM yuxi_config_changes), 0), "
        "coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0))"));
    std::printf("## Start-up: a fresh agent on %d rows (ms)\n\n", rows + 1);
    std::printf(
        "| run | agent start to segment at the revision | agent: snapshot query | agent: publish "
        "|\n");
    std::printf("|---:|---:|---:|---:|\n");
    for (int run = 0; run < startup_runs; ++run) {
        const std::string seg = segment + "-start" + std::to_string(run);
        unlink_segment(seg);
        AgentProcess a;
        const auto t0 = Clock::now();
        a.start(url, seg, log, "info");
        Client c = open_segment(seg);
        if (!c.wait_for_revision(rev, 30s)) {
            die("start-up: the revision did not come");
        }
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        std::string text;
        std::smatch m;
        const std::regex re(R"(\(query ([0-9.]+) ms, publish ([0-9.]+) ms\))");
        for (int i = 0; i < 1000 && !std::regex_search(text = read_text(log), m, re); ++i) {
            std::this_thread::sleep_for(5ms);
        }
        std::printf("| %d | %.0f | %s | %s |\n", run + 1, ms,
                    m.size() > 1 ? m[1].str().c_str() : "?",
                    m.size() > 2 ? m[2].str().c_str() : "?");
        a.stop();
        unlink_segment(seg);
    }

    PQfinish(writer);
    unlink_segment(segment);
    cleanup();
    std::error_code ec;
    fs::remove(log, ec);
    return 0;
}
