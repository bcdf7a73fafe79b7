// High-availability fixtures, for the tests and bench/failover_bench.cpp (no GoogleTest
// here): a PostgreSQL node that can be a streaming standby of another (pg_basebackup -R)
// and be promoted, and a Redis primary with a replica watched by three Sentinels
// (`redis-server --sentinel`), all private, on free loopback ports. Short Sentinel
// timeouts keep a failover within a few seconds.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sys/stat.h>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "integration/redis_test_support.hpp"
#include "lock/redis_connection.hpp"
#include "support/hermetic.hpp"
#include "support/process.hpp"

namespace yuxi::config::test {

// What `command` (run by sh) prints on stdout.
inline std::string shell_output(const std::string& command) {
    std::string out;
    FILE* p = ::popen(command.c_str(), "r");
    if (p == nullptr) {
        return out;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    ::pclose(p);
    return out;
}

// One PostgreSQL server in a directory of its own: a primary (initdb) or a standby of
// another node (pg_basebackup -R, streaming), run as `postgres` when we are root.
class PgNode {
  public:
    // The PostgreSQL programs: $YUXI_TEST_PG_BIN, else Debian's PostgreSQL 15.
    static std::string bin_dir() {
        return env_var("YUXI_TEST_PG_BIN").value_or("/usr/lib/postgresql/15/bin");
    }

    PgNode() = default;
    PgNode(const PgNode&) = delete;
    PgNode& operator=(const PgNode&) = delete;
    ~PgNode() {
        if (!dir_.empty()) {
            (void)pg_ctl("stop -m immediate");
            std::error_code ec;
            fs::remove_all(dir_, ec);
        }
    }

    bool init_primary() {
        make_dir();
        return run(bin_dir() + "/initdb -D " + shell_quote(data()) +
                   " -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >" +
                   shell_quote((dir_ / "initdb.log").string()) + " 2>&1") &&
               start_on_free_port();
    }

    // A streaming standby of `primary`, started.
    bool init_standby(const PgNode& primary) {
        make_dir();
        return run(bin_dir() + "/pg_basebackup -h 127.0.0.1 -p " + std::to_string(primary.port()) +
                   " -U postgres -D " + shell_quote(data()) + " -R -X stream >" +
                   shell_quote((dir_ / "basebackup.log").string()) + " 2>&1") &&
               start_on_free_port();
    }

    bool stop(const std::string& mode) { return pg_ctl("stop -m " + mode); }
    bool start() { return pg_ctl("start"); }
    bool promote() { return pg_ctl("promote"); }

    std::uint16_t port() const noexcept { return port_; }
    std::string url(const std::string& dbname = "postgres") const {
        return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + dbname;
    }
    std::string log() const { return read_text(dir_ / "server.log"); }

  private:
    std::string data() const { return (dir_ / "data").string(); }

    void make_dir() {
        dir_ = temp_dir("pgha");
        ::chmod(dir_.c_str(), 0755);
        if (::geteuid() == 0) {
            run("chown postgres: " + shell_quote(dir_.string()), false);
        }
    }

    bool start_on_free_port() {
        for (int attempt = 0; attempt < 3; ++attempt) {
            port_ = free_port();
            if (pg_ctl("start")) {
                return true;
            }
        }
        return false;
    }

    bool pg_ctl(const std::string& what) {
        const std::string opts = "-c listen_addresses=127.0.0.1 -p " + std::to_string(port_) +
                                 " -c unix_socket_directories=" + dir_.string() +
                                 " -c fsync=off -c max_connections=60" +
                                 " -c wal_sender_timeout=5s -c wal_receiver_status_interval=1s";
        return run(bin_dir() + "/pg_ctl -D " + shell_quote(data()) + " -l " +
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
};

// A multi-host URL over `nodes` that connects to whichever is the primary.
inline std::string multi_host_url(const std::vector<const PgNode*>& nodes,
                                  const std::string& dbname = "postgres") {
    std::string hosts;
    for (const PgNode* n : nodes) {
        hosts += (hosts.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(n->port());
    }
    return "postgresql://postgres@" + hosts + "/" + dbname +
           "?target_session_attrs=read-write&connect_timeout=2";
}

// One `redis-server <conf> --sentinel` (the configuration file must come first, and the
// Sentinel rewrites it: one file per Sentinel, in its own directory).
class SentinelProcess {
  public:
    SentinelProcess() = default;
    SentinelProcess(const SentinelProcess&) = delete;
    SentinelProcess& operator=(const SentinelProcess&) = delete;
    ~SentinelProcess() {
        kill();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    bool start(const std::string& monitor) {
        dir_ = temp_dir("sentinel");
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = free_port();
            const fs::path conf = dir_ / "sentinel.conf";
            std::ofstream(conf) << "port " << port_ << "\nbind 127.0.0.1\ndir " << dir_.string()
                                << "\n"
                                << monitor;
            pid_ = spawn_process({redis_server_bin(), conf.string(), "--sentinel"},
                                 child_environment({}), dir_ / "sentinel.log", LogMode::append);
            if (pid_ > 0 && eventually([&] { return ping(); }, 5s)) {
                return true;
            }
            kill();
        }
        return false;
    }

    void kill() {
        if (pid_ > 0) {
            kill_and_reap(pid_);
            pid_ = -1;
        }
    }
    std::uint16_t port() const noexcept { return port_; }
    RedisEndpoint endpoint() const {
        RedisEndpoint e;
        e.port = port_;
        e.connect_timeout = 500ms;
        e.command_timeout = 500ms;
        return e;
    }
    bool ping() const {
        try {
            detail::RedisConnection c(endpoint());
            return c.command({"PING"}) != nullptr;
        } catch (const std::exception&) {
            return false;
        }
    }

  private:
    fs::path dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

// A Redis primary, one replica and three Sentinels watching master "ha" (quorum 2).
class SentinelCluster {
  public:
    static constexpr const char* kMaster = "ha";
    static constexpr int kDownAfterMs = 1000;

    bool start() {
        if (!primary_.start() ||
            !replica_.start(0, {"--replicaof", "127.0.0.1", std::to_string(primary_.port())})) {
            return false;
        }
        // Wait for the replica's first sync, so that a failover has somewhere to go.
        if (!eventually([&] { return connected_replicas(primary_.port()) >= 1; }, 10s)) {
            return false;
        }
        const std::string monitor = "sentinel monitor " + std::string(kMaster) + " 127.0.0.1 " +
                                    std::to_string(primary_.port()) +
                                    " 2\nsentinel down-after-milliseconds " + kMaster + " " +
                                    std::to_string(kDownAfterMs) + "\nsentinel failover-timeout " +
                                    kMaster + " 4000\n";
        for (int i = 0; i < 3; ++i) {
            sentinels_.push_back(std::make_unique<SentinelProcess>());
            if (!sentinels_.back()->start(monitor)) {
                return false;
            }
        }
        return eventually([&] { return master_port() == primary_.port(); }, 10s);
    }

    // "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
    std::string sentinel_list() const {
        std::string out;
        for (const auto& s : sentinels_) {
            out += (out.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(s->port());
        }
        return out;
    }

    PrivateRedis& primary() { return primary_; }
    PrivateRedis& replica() { return replica_; }
    SentinelProcess& sentinel(int i) { return *sentinels_.at(static_cast<std::size_t>(i)); }

    // The port the Sentinels name for the master now (asked of the first one that answers).
    std::uint16_t master_port() const {
        for (const auto& s : sentinels_) {
            try {
                detail::RedisConnection c(s->endpoint());
                auto r = c.command({"SENTINEL", "get-master-addr-by-name", kMaster});
                if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                    return static_cast<std::uint16_t>(std::stoi(r->element[1]->str));
                }
            } catch (const std::exception&) {
            }
        }
        return 0;
    }

    // Replicas of the server at `port` that finished their first sync ("state=online" in
    // INFO replication), so that a WAIT can count them; -1 if it cannot be asked.
    static long long connected_replicas(std::uint16_t port) {
        try {
            RedisEndpoint e;
            e.port = port;
            e.connect_timeout = 500ms;
            e.command_timeout = 500ms;
            detail::RedisConnection c(e);
            auto r = c.command({"INFO", "replication"});
            if (r->type != REDIS_REPLY_STRING) {
                return -1;
            }
            const std::string info(r->str, r->len);
            long long online = 0;
            for (auto at = info.find("state=online"); at != std::string::npos;
                 at = info.find("state=online", at + 1)) {
                ++online;
            }
            return online;
        } catch (const std::exception&) {
        }
        return -1;
    }

  private:
    PrivateRedis primary_;
    PrivateRedis replica_;
    std::vector<std::unique_ptr<SentinelProcess>> sentinels_;
};

}  // namespace yuxi::config::test
