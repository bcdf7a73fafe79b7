// What the database-mode tests share: blocking libpq helpers, a fresh database per test
// with the schema of deploy/sql applied, the real agent binary as a child process, a
// private PostgreSQL server for the fault tests, and the check that a segment equals the
// database. (Over 600 lines: the harness of four test programs and the benches, kept in
// one header so that they all drive servers and agents the same way.)
//
// Needs YUXI_AGENT_BIN and YUXI_SQL_DIR (compile definitions). The shared server comes
// from YUXI_TEST_DATABASE_URL (scripts/test-servers); tests skip without it.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cctype>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "support/hermetic.hpp"
#include "support/loopback_http.hpp"
#include "support/process.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config::test {

// Sleeps on the segment's futex until `done` holds, re-checking after each new revision.
inline bool until_published(const Client& c, const std::function<bool()>& done,
                            std::chrono::milliseconds timeout = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const std::uint64_t rev = c.revision();
        if (done()) {
            return true;
        }
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= 0s) {
            return false;
        }
        (void)c.wait_for_change(
            rev, std::min<std::chrono::nanoseconds>(
                     std::chrono::duration_cast<std::chrono::nanoseconds>(left), 200ms));
    }
}

// ---------------------------------------------------------------------------------------
// Blocking libpq, for the tests' own reads and writes.

struct Row {
    std::vector<std::optional<std::string>> cells;
    const std::string& operator[](std::size_t i) const {
        static const std::string kNull = "<null>";
        return cells.at(i) ? *cells[i] : kNull;
    }
};

struct ExecResult {
    bool ok = false;
    std::string sqlstate;
    std::string message;
    std::vector<Row> rows;
};

class Pg {
  public:
    explicit Pg(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str())) {
        if (conn_ == nullptr || PQstatus(conn_) != CONNECTION_OK) {
            const std::string msg = conn_ != nullptr ? PQerrorMessage(conn_) : "out of memory";
            PQfinish(conn_);
            conn_ = nullptr;
            throw std::runtime_error("cannot connect: " + msg);
        }
        PQsetNoticeProcessor(
            conn_, [](void*, const char*) {}, nullptr);
    }
    ~Pg() { PQfinish(conn_); }
    Pg(const Pg&) = delete;
    Pg& operator=(const Pg&) = delete;

    PGconn* get() const noexcept { return conn_; }
    bool ok() const noexcept { return PQstatus(conn_) == CONNECTION_OK; }

    ExecResult try_exec(const std::string& sql, const std::vector<std::string>& params = {}) {
        std::vector<const char*> values;
        for (const std::string& p : params) {
            values.push_back(p.c_str());
        }
        PGresult* r = params.empty()
                          ? PQexec(conn_, sql.c_str())
                          : PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()),
                                         nullptr, values.data(), nullptr, nullptr, 0);
        ExecResult out;
        const ExecStatusType st = PQresultStatus(r);
        out.ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!out.ok) {
            const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            out.sqlstate = state != nullptr ? state : "";
            out.message = PQerrorMessage(conn_);
        } else if (st == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(r); ++i) {
                Row row;
                for (int j = 0; j < PQnfields(r); ++j) {
                    if (PQgetisnull(r, i, j) != 0) {
                        row.cells.emplace_back();
                    } else {
                        row.cells.emplace_back(std::string(
                            PQgetvalue(r, i, j), static_cast<std::size_t>(PQgetlength(r, i, j))));
                    }
                }
                out.rows.push_back(std::move(row));
            }
        }
        PQclear(r);
        return out;
    }

    std::vector<Row> exec(const std::string& sql, const std::vector<std::string>& params = {}) {
        ExecResult r = try_exec(sql, params);
        if (!r.ok) {
            throw std::runtime_error("SQL failed: " + r.message + " in: " + sql.substr(0, 200));
        }
        return std::move(r.rows);
    }

    std::string scalar(const std::string& sql, const std::vector<std::string>& params = {}) {
        const auto rows = exec(sql, params);
        if (rows.empty() || rows[0].cells.empty()) {
            throw std::runtime_error("no value from: " + sql);
        }
        return rows[0][0];
    }

    std::uint64_t number(const std::string& sql) { return std::stoull(scalar(sql)); }

  private:
    PGconn* conn_;
};

// The fields of a conninfo (URI or keyword=value) that the tests rebuild URLs from.
struct ConnFields {
    std::string host = "127.0.0.1";
    std::string port = "5432";
    std::string user = "postgres";
    std::string dbname = "postgres";
};

inline ConnFields conn_fields(const std::string& conninfo) {
    ConnFields f;
    char* err = nullptr;
    PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
    if (opts == nullptr) {
        PQfreemem(err);
        throw std::runtime_error("bad conninfo");
    }
    for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
        if (o->val == nullptr) {
            continue;
        }
        const std::string k = o->keyword;
        if (k == "host") {
            f.host = o->val;
        } else if (k == "port") {
            f.port = o->val;
        } else if (k == "user") {
            f.user = o->val;
        } else if (k == "dbname") {
            f.dbname = o->val;
        }
    }
    PQconninfoFree(opts);
    return f;
}

inline std::string make_url(const ConnFields& f, const std::string& dbname,
                            const std::string& user = {}, const std::string& password = {}) {
    std::string u = user.empty() ? f.user : user;
    if (!password.empty()) {
        u += ":" + password;
    }
    return "postgresql://" + u + "@" + f.host + ":" + f.port + "/" + dbname;
}

inline std::string sql_dir() {
    return YUXI_SQL_DIR;
}

// Applies deploy/sql/*.sql in file-name order, each file as one PQexec, as the tests are
// not to depend on `yuxi-configctl schema apply`.
inline void apply_schema(Pg& pg) {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(sql_dir())) {
        // The numbered migrations; roles.sql is applied only on request.
        if (e.path().extension() == ".sql" &&
            std::isdigit(static_cast<unsigned char>(e.path().filename().string()[0])) != 0) {
            files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
        pg.exec(read_text(f));
    }
}

// A database of its own for one test, dropped afterwards (with any connection left).
class TestDatabase {
  public:
    TestDatabase(const std::string& server_url, bool with_schema = true)
        : fields_(conn_fields(server_url)), admin_url_(server_url) {
        static std::atomic<int> counter{0};
        name_ = "yuxi_t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
        Pg admin(admin_url_);
        admin.exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
        admin.exec("CREATE DATABASE " + name_);
        url_ = make_url(fields_, name_);
        if (with_schema) {
            Pg pg(url_);
            apply_schema(pg);
        }
    }
    ~TestDatabase() {
        try {
            Pg admin(admin_url_);
            (void)admin.try_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
        } catch (...) {
        }
    }
    TestDatabase(const TestDatabase&) = delete;
    TestDatabase& operator=(const TestDatabase&) = delete;

    const std::string& name() const noexcept { return name_; }
    const std::string& url() const noexcept { return url_; }
    const ConnFields& fields() const noexcept { return fields_; }

  private:
    ConnFields fields_;
    std::string admin_url_;
    std::string name_;
    std::string url_;
};

// The revision the database is at: what an agent caught up with it publishes.
inline std::uint64_t db_revision(Pg& pg) {
    return pg.number(
        "SELECT greatest(coalesce((SELECT max(revision) FROM yuxi_config_changes), 0), "
        "coalesce((SELECT trimmed_through FROM yuxi_config_log_state), 0))");
}

using EntryMap = std::map<std::string, std::pair<std::string, std::string>>;  // key → value, cat

inline EntryMap db_entries(Pg& pg, Namespace ns) {
    EntryMap out;
    const auto rows =
        ns == Namespace::config
            ? pg.exec("SELECT key, value::text, coalesce(category, '') FROM system_configs")
            : pg.exec("SELECT key, content::text, '' FROM global_metadata");
    for (const Row& r : rows) {
        out[r[0]] = {r[1], r[2]};
    }
    return out;
}

inline EntryMap segment_entries(const Snapshot& s, Namespace ns) {
    EntryMap out;
    EXPECT_TRUE(s.for_each(ns, "", [&](const EntryInfo& e) {
        out[std::string(e.key)] = {std::string(e.value), std::string(e.category)};
    }));
    return out;
}

// Waits until the segment reaches the database's revision, then compares every entry.
inline void expect_converged(const Client& c, Pg& pg, std::chrono::milliseconds timeout = 20s) {
    const std::uint64_t rev = db_revision(pg);
    ASSERT_TRUE(c.wait_for_revision(rev, timeout))
        << "segment at " << c.revision() << ", database at " << rev;
    const Snapshot s = c.snapshot();
    EXPECT_EQ(s.revision(), rev);
    for (const Namespace ns : {Namespace::config, Namespace::metadata}) {
        const EntryMap want = db_entries(pg, ns);
        const EntryMap got = segment_entries(s, ns);
        EXPECT_EQ(got.size(), want.size()) << "namespace " << static_cast<int>(ns);
        for (const auto& [k, v] : want) {
            const auto it = got.find(k);
            if (it == got.end()) {
                ADD_FAILURE() << "key '" << k << "' missing from the segment";
            } else if (it->second != v) {
                ADD_FAILURE() << "key '" << k << "': segment " << it->second.first << " ["
                              << it->second.second << "], database " << v.first << " [" << v.second
                              << "]";
            }
        }
        for (const auto& [k, v] : got) {
            if (!want.contains(k)) {
                ADD_FAILURE() << "key '" << k << "' in the segment, not in the database";
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The agent binary as a child process.

inline void unlink_segment(const std::string& name) {
    ::unlink(detail::segment_path(name).c_str());
    ::unlink(detail::lock_path(name).c_str());
    ::unlink(detail::waiters_path(name).c_str());
    // Left by a writer killed in the middle of replacing the segment (segment_writer.cpp).
    ::unlink((detail::segment_path(name) + ".tmp.retiring").c_str());
}

class Agent {
  public:
    Agent() = default;
    Agent(const Agent&) = delete;
    Agent& operator=(const Agent&) = delete;
    ~Agent() { kill(); }

    // Starts the agent on `url` (DATABASE_URL) and `segment`, with `args` and `env`
    // ("NAME=value") added; stdout and stderr go to `log`, appended.
    void start(const std::string& url, const std::string& segment, const fs::path& log,
               const std::vector<std::string>& args = {},
               const std::vector<std::string>& env = {}) {
        std::vector<std::string> e = {"CONFIG_MODE=database", "YUXI_CONFIG_SEGMENT=" + segment,
                                      "LOG_LEVEL=debug", "YUXI_CONFIG_HTTP=127.0.0.1:0"};
        if (!url.empty()) {
            e.push_back("DATABASE_URL=" + url);
        }
        e.insert(e.end(), env.begin(), env.end());
        spawn(args, e, log);
    }

    // The agent with `args`, in our environment less whatever would configure it, plus
    // `env`; stdout and stderr appended to `log`.
    void spawn(const std::vector<std::string>& args, const std::vector<std::string>& env,
               const fs::path& log) {
        log_ = log;
        std::vector<std::string> argv = {YUXI_AGENT_BIN};
        argv.insert(argv.end(), args.begin(), args.end());
        const auto environment =
            child_environment({"CONFIG_MODE=", "YUXI_", "LOG_LEVEL=", "DATABASE_URL", "PG"}, env);
        const pid_t pid = spawn_process(argv, environment, log, LogMode::append);
        ASSERT_GT(pid, 0) << "posix_spawn " << YUXI_AGENT_BIN << ": " << std::strerror(errno);
        pid_ = pid;
    }

    pid_t pid() const noexcept { return pid_; }
    bool running() const noexcept { return pid_ > 0; }
    std::string log() const { return read_text(log_); }
    bool log_contains(std::string_view s) const { return log().find(s) != std::string::npos; }

    Exit wait_exit(std::chrono::milliseconds timeout = 10s) {
        if (pid_ <= 0) {
            return {};
        }
        const Exit out = test::wait_exit(pid_, timeout);
        if (out.exited) {
            pid_ = -1;
        }
        return out;
    }

    // SIGTERM, then the exit status.
    Exit stop() {
        if (pid_ <= 0) {
            return {};
        }
        ::kill(pid_, SIGTERM);
        return wait_exit();
    }

    void signal(int sig) const {
        if (pid_ > 0) {
            ::kill(pid_, sig);
        }
    }

    void kill() {
        if (pid_ > 0) {
            kill_and_reap(pid_);
            pid_ = -1;
        }
    }

  private:
    pid_t pid_ = -1;
    fs::path log_;
};

// Opens the segment once the agent has created it.
inline std::optional<Client> open_when_ready(const std::string& segment,
                                             std::chrono::milliseconds timeout = 20s) {
    std::optional<Client> c;
    (void)eventually(
        [&] {
            try {
                c.emplace(Client::open(segment));
                return true;
            } catch (const SegmentError&) {
                return false;
            }
        },
        timeout);
    return c;
}

inline std::string unique_segment(std::string_view tag) {
    return "yuxi-test-db-" + std::string(tag) + "-" + std::to_string(::getpid());
}

// A reader that hammers the segment from its own thread while faults happen, and checks
// that reads never fail: `sentinel` (a config key the test never deletes) always has a
// value, the revision never moves backwards, and health() always answers.
class Reader {
  public:
    Reader(const std::string& segment, std::string sentinel)
        : client_(Client::open(segment)), sentinel_(std::move(sentinel)) {
        thread_ = std::thread([this] { run(); });
    }
    ~Reader() { finish(); }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    void finish() {
        stop_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }

    std::uint64_t reads() const { return reads_; }
    std::uint64_t missing() const { return missing_; }
    std::uint64_t backwards() const { return backwards_; }
    std::uint64_t errors() const { return errors_; }

  private:
    void run() {
        std::uint64_t last = 0;
        while (!stop_) {
            try {
                const std::uint64_t rev = client_.revision();
                if (rev < last) {
                    ++backwards_;
                }
                last = std::max(last, rev);
                if (!client_.get(sentinel_)) {
                    ++missing_;
                }
                const Snapshot s = client_.snapshot();
                if (!s.get(sentinel_)) {
                    ++missing_;
                }
                (void)client_.health();
                ++reads_;
            } catch (...) {
                ++errors_;
            }
            std::this_thread::sleep_for(50us);
        }
    }

    Client client_;
    std::string sentinel_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> reads_{0}, missing_{0}, backwards_{0}, errors_{0};
    std::thread thread_;
};

// ---------------------------------------------------------------------------------------
// A private PostgreSQL server, for tests that restart or stop it, or need password auth.

class PrivateServer {
  public:
    // The PostgreSQL programs: $YUXI_TEST_PG_BIN, else Debian's PostgreSQL 15.
    static std::string bin_dir() {
        return env_var("YUXI_TEST_PG_BIN").value_or("/usr/lib/postgresql/15/bin");
    }

    // Empty if a private server can be run here, else why not.
    static std::string unavailable() {
        if (!fs::exists(fs::path(bin_dir()) / "initdb") ||
            !fs::exists(fs::path(bin_dir()) / "pg_ctl")) {
            return "no initdb/pg_ctl in " + bin_dir() + " (set YUXI_TEST_PG_BIN)";
        }
        if (::geteuid() == 0 && ::getpwnam("postgres") == nullptr) {
            return "running as root without a `postgres` user to run the server as";
        }
        return {};
    }

    // initdb and start. `hba` replaces pg_hba.conf when not empty; `options` are added to
    // the server's command line (-c name=value ...).
    bool start(const std::string& hba = {}, const std::string& options = {}) {
        options_ = options;
        if (dir_.empty()) {
            make_dir();
        }
        if (!run(bin_dir() + "/initdb -D " + shell_quote(data().string()) +
                 " -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >" +
                 shell_quote((dir_ / "initdb.log").string()) + " 2>&1")) {
            return false;
        }
        if (!hba.empty()) {
            const fs::path p = data() / "pg_hba.conf";
            std::ofstream(p) << hba;
            if (::geteuid() == 0) {
                run("chown postgres: " + shell_quote(p.string()), false);
            }
        }
        for (int attempt = 0; attempt < 3; ++attempt) {
            port_ = free_port();
            if (pg_ctl("start")) {
                return true;
            }
        }
        return false;
    }

    // pg_ctl restart -m `mode` (fast or immediate), on the same port.
    bool restart(const std::string& mode) { return pg_ctl("restart -m " + mode); }
    bool stop(const std::string& mode = "fast") { return pg_ctl("stop -m " + mode); }
    bool start_again() { return pg_ctl("start"); }

    ~PrivateServer() {
        if (!dir_.empty()) {
            (void)pg_ctl("stop -m immediate");
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    std::string url(const std::string& dbname = "postgres", const std::string& user = "postgres",
                    const std::string& password = {}) const {
        ConnFields f;
        f.host = "127.0.0.1";
        f.port = std::to_string(port_);
        return make_url(f, dbname, user, password);
    }
    std::uint16_t port() const noexcept { return port_; }

  private:
    fs::path data() const { return dir_ / "data"; }

    bool pg_ctl(const std::string& what) {
        const std::string opts = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) +
                                 " -c unix_socket_directories=" + dir_.string() +
                                 " -c fsync=off -c max_connections=100 " + options_;
        return run(bin_dir() + "/pg_ctl -D " + shell_quote(data().string()) + " -l " +
                   shell_quote((dir_ / "server.log").string()) + " -w -t 60 -o " +
                   shell_quote(opts) + " " + what + " >/dev/null 2>&1");
    }

    static bool run(const std::string& cmd, bool as_postgres = true) {
        const std::string full = as_postgres && ::geteuid() == 0
                                     ? "runuser -u postgres -- sh -c " + shell_quote(cmd)
                                     : cmd;
        return std::system(full.c_str()) == 0;
    }

    fs::path dir_;
    std::uint16_t port_ = 0;
    std::string options_;

  public:
    // The server's own directory (owned by `postgres` when run as root): where certificates
    // it reads must live.
    const fs::path& dir() const noexcept { return dir_; }
    // Makes `path` the server's: owned by `postgres` (when root), mode `mode`.
    static void give_to_server(const fs::path& path, mode_t mode) {
        ::chmod(path.c_str(), mode);
        if (::geteuid() == 0) {
            run("chown postgres: " + shell_quote(path.string()), false);
        }
    }
    // Prepares the directory before start(), so that files can be put there first.
    void make_dir() {
        dir_ = temp_dir("pg");
        ::chmod(dir_.c_str(), 0755);
        if (::geteuid() == 0) {
            run("chown postgres: " + shell_quote(dir_.string()), false);
        }
    }
};

// ---------------------------------------------------------------------------------------
// Writers: threads with their own connections, writing until told to stop, riding out
// lost connections (reconnecting) as an application would.

class WriteStorm {
  public:
    WriteStorm(std::string url, int threads, int keys) : url_(std::move(url)), keys_(keys) {
        for (int t = 0; t < threads; ++t) {
            threads_.emplace_back([this, t] { run(t); });
        }
    }
    ~WriteStorm() { finish(); }
    WriteStorm(const WriteStorm&) = delete;
    WriteStorm& operator=(const WriteStorm&) = delete;

    void finish() {
        stop_ = true;
        for (std::thread& t : threads_) {
            if (t.joinable()) {
                t.join();
            }
        }
    }
    std::uint64_t commits() const { return commits_; }
    std::uint64_t failures() const { return failures_; }

  private:
    void run(int t) {
        std::uint64_t n = 0;
        std::unique_ptr<Pg> pg;
        while (!stop_) {
            try {
                if (!pg || !pg->ok()) {
                    pg = std::make_unique<Pg>(url_);
                }
                ++n;
                const std::string key = "storm_" + std::to_string((n * 7 + t) % keys_);
                const std::string v = std::to_string(t * 1000000 + n);
                const auto r = pg->try_exec(
                    "INSERT INTO system_configs (key, value, category) VALUES ($1, $2::jsonb, "
                    "'storm') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    {key, v});
                if (r.ok) {
                    ++commits_;
                } else {
                    ++failures_;
                }
            } catch (const std::exception&) {
                ++failures_;
                pg.reset();
                std::this_thread::sleep_for(20ms);
            }
        }
    }

    std::string url_;
    int keys_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint64_t> commits_{0}, failures_{0};
    std::vector<std::thread> threads_;
};

}  // namespace yuxi::config::test
