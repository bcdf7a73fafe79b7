// What the PostgreSQL-fed benchmarks (propagation_bench, fanout_bench) share: dying
// cleanly half-way, libpq calls that die on error, a database of their own with
// deploy/sql applied, child processes, the agent's segment, and latency statistics.
//
// A bench is a straight line from main: any failure is fatal, and die() undoes what the
// run left behind (children, databases, segments) before it exits, so that a failed run
// leaves no agent, database or segment behind to skew the next one.
//
// Needs YUXI_SQL_DIR (a compile definition) and libpq.
#pragma once

#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cctype>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "machine.hpp"
#include "support/hermetic.hpp"
#include "support/process.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config::bench {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using test::read_text;

// ---------------------------------------------------------------------------------------
// What to undo if the run dies half-way.

struct Leftovers {
    std::string server;  // YUXI_TEST_DATABASE_URL: where the databases are dropped
    std::vector<pid_t> children;
    std::set<std::string> databases;
    std::set<std::string> segments;
};

inline Leftovers& leftovers() {
    static Leftovers l;
    return l;
}

inline void unlink_segment(const std::string& name) {
    ::unlink(detail::segment_path(name).c_str());
    ::unlink(detail::lock_path(name).c_str());
    ::unlink(detail::waiters_path(name).c_str());
}

inline void drop_database(const std::string& db) {
    PGconn* c = PQconnectdb(leftovers().server.c_str());
    PGresult* r = PQexec(c, ("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)").c_str());
    PQclear(r);
    PQfinish(c);
    leftovers().databases.erase(db);
}

inline void cleanup() {
    Leftovers& l = leftovers();
    for (const pid_t pid : l.children) {
        test::kill_and_reap(pid);
    }
    l.children.clear();
    for (const std::string& db : std::set<std::string>(l.databases)) {
        drop_database(db);
    }
    for (const std::string& s : l.segments) {
        unlink_segment(s);
    }
    l.segments.clear();
}

[[noreturn]] inline void die(const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", program_invocation_short_name, message.c_str());
    cleanup();
    std::exit(1);
}

// Walks the command line's `--name value` pairs: `take(name, value)` returns false for a
// name it does not know, and the run dies with `usage`.
inline void parse_options(int argc, char** argv, const std::string& usage,
                          const std::function<bool(const std::string&, const std::string&)>& take) {
    for (int i = 1; i < argc; ++i) {
        const std::string name = argv[i];
        if (i + 1 >= argc) {
            die(name + " needs a value; " + usage);
        }
        if (!take(name, argv[++i])) {
            die(usage);
        }
    }
}

// The PostgreSQL server the run creates its databases on: YUXI_TEST_DATABASE_URL.
inline const std::string& use_test_server() {
    const auto server = test::env_var("YUXI_TEST_DATABASE_URL");
    if (!server) {
        die("YUXI_TEST_DATABASE_URL is not set: scripts/test-servers start && "
            "eval \"$(scripts/test-servers env)\"");
    }
    leftovers().server = *server;
    return leftovers().server;
}

// ---------------------------------------------------------------------------------------
// Child processes.

// Starts `argv` with exactly `env`; die() kills it.
inline pid_t start_child(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                         const test::FileActions& actions) {
    const pid_t pid = test::spawn_process(argv, env, actions);
    if (pid < 0) {
        die("cannot start " + argv[0] + ": " + std::strerror(errno));
    }
    leftovers().children.push_back(pid);
    return pid;
}

// Reaps a child that was told to end, and lets die() forget it.
inline void reap_child(pid_t pid) {
    ::waitpid(pid, nullptr, 0);
    std::erase(leftovers().children, pid);
}

// Stops agents a bench started (SIGTERM to all, then each reaped) and removes their
// segments.
inline void stop_agents(const std::vector<pid_t>& pids, const std::vector<std::string>& segments) {
    for (const pid_t pid : pids) {
        ::kill(pid, SIGTERM);
    }
    for (const pid_t pid : pids) {
        reap_child(pid);
    }
    for (const std::string& s : segments) {
        unlink_segment(s);
        leftovers().segments.erase(s);
    }
}

// Opens the segment once its agent has published it; `hint` says where to look if not.
inline Client open_segment(const std::string& segment, std::chrono::seconds timeout = 30s,
                           const std::string& hint = {}) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        try {
            return Client::open(segment);
        } catch (const SegmentError&) {
            if (Clock::now() > deadline) {
                die("the agent published no segment '" + segment + "'" +
                    (hint.empty() ? "" : " (" + hint + ")"));
            }
            std::this_thread::sleep_for(1ms);
        }
    }
}

// ---------------------------------------------------------------------------------------
// PostgreSQL.

inline PGconn* connect_or_die(const std::string& conninfo) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    if (PQstatus(c) != CONNECTION_OK) {
        die(std::string("cannot connect: ") + PQerrorMessage(c));
    }
    PQsetNoticeProcessor(
        c, [](void*, const char*) {}, nullptr);
    return c;
}

inline void exec_or_die(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    const ExecStatusType st = PQresultStatus(r);
    PQclear(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        die("SQL failed: " + std::string(PQerrorMessage(c)) + " in: " + sql.substr(0, 120));
    }
}

inline std::string scalar_or_die(PGconn* c, const std::string& sql) {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
        PQclear(r);
        die("SQL failed: " + std::string(PQerrorMessage(c)) + " in: " + sql.substr(0, 120));
    }
    std::string v = PQgetvalue(r, 0, 0);
    PQclear(r);
    return v;
}

// `dbname` on the server of `server` (a conninfo), as a URL.
inline std::string url_for(const std::string& server, const std::string& dbname) {
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(server.c_str(), &err);
    if (opts == nullptr) {
        die("YUXI_TEST_DATABASE_URL cannot be parsed");
    }
    std::string host = "127.0.0.1", port = "5432", user = "postgres";
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
        if (o->val == nullptr) {
            continue;
        }
        const std::string k = o->keyword;
        host = k == "host" ? o->val : host;
        port = k == "port" ? o->val : port;
        user = k == "user" ? o->val : user;
    }
    PQconninfoFree(opts);
    return "postgresql://" + user + "@" + host + ":" + port + "/" + dbname;
}

// A new database `name` on leftovers().server, dropped by die(); returns its URL.
inline std::string create_database(const std::string& name) {
    PGconn* admin = connect_or_die(leftovers().server);
    exec_or_die(admin, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    exec_or_die(admin, "CREATE DATABASE " + name);
    PQfinish(admin);
    leftovers().databases.insert(name);
    return url_for(leftovers().server, name);
}

// deploy/sql/*.sql in file-name order, then the one row the benches update: `bench` = 0.
inline void apply_schema_with_bench_row(PGconn* c) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(YUXI_SQL_DIR)) {
        // The numbered migrations; roles.sql is applied only on request.
        if (e.path().extension() == ".sql" &&
            std::isdigit(static_cast<unsigned char>(e.path().filename().string()[0])) != 0) {
            files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        exec_or_die(c, read_text(f));
    }
    exec_or_die(c,
                "INSERT INTO system_configs (key, value, category) VALUES ('bench', '0', "
                "'basic')");
}

// ---------------------------------------------------------------------------------------
// Statistics.

struct Stats {
    std::size_t n = 0;
    double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};

// Nearest-rank percentiles: every one is a sample that was measured.
inline Stats stats_of(std::vector<double> v) {
    Stats s;
    s.n = v.size();
    if (v.empty()) {
        return s;
    }
    std::sort(v.begin(), v.end());
    auto q = [&](double p) {
        const auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
        return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
    };
    s.p50 = q(0.50);
    s.p90 = q(0.90);
    s.p99 = q(0.99);
    s.p999 = q(0.999);
    s.max = v.back();
    double sum = 0;
    for (const double x : v) {
        sum += x;
    }
    s.mean = sum / static_cast<double>(v.size());
    return s;
}

}  // namespace yuxi::config::bench
