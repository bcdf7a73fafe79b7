// The Redis fan-out, measured: the relay against every agent listening to
// PostgreSQL, the read path against Redis, the lock, and a fleet of 1,000 followers.
// (One file over 600 lines: its five sections share one harness and must run in one
// process, so that their ratios come from one run on a noisy machine.)
//
//   fanout_bench [--fleet 1,5,20] [--updates N] [--subscribers N] [--fleet-samples N]
//                [--bare-subscribers N] [--sections fanout,read,lock,fleet,bare]
//                [--agent-log-level L]
//
// Needs YUXI_TEST_DATABASE_URL (a PostgreSQL superuser; scripts/test-servers gives one) and
// redis-server (on PATH, /usr/bin, or YUXI_TEST_REDIS_SERVER). It creates its own
// databases (dropped at the end), starts its own redis-servers on free loopback ports, and
// runs the real yuxi-config-agent. It prints Markdown tables:
//
// 1. fanout: for each fleet size N, two fleets side by side on two databases and two
//    Redis servers: N agents in relay mode (one leader, N-1 followers) and N agents with
//    the relay off (each LISTENs). Updates alternate between the fleets, one at a time;
//    each is timed from just before the UPDATE is sent to the moment the bench has seen
//    the new revision in all N segments (Client::wait_for_revision on each in turn). The
//    UPDATE's own round trip (its commit) and the agents' PostgreSQL connections in
//    steady state are reported per mode.
// 2. read: Redis GET of a 100-byte value over loopback (hiredis, blocking) against
//    Client::get of the same 100 bytes from a segment, interleaved rounds.
// 3. lock: DistributedLock::try_acquire + release, one round trip each.
// 4. fleet: 1,000 follower subscriptions in this process (hiredis async on one libevent
//    loop), each decoding every message with decode_batch and applying it as a follower
//    does. Through a real relay agent: UPDATE sent → the last follower applied it.
//    Against a bare PUBLISH of a message of the same size on another channel to the same
//    connections: PUBLISH sent → the last applied it. Samples alternate.
// 5. bare: bare PUBLISH to --bare-subscribers connections (default 5,000), no agent.
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/fleet/relay.hpp"
#include "bench_support.hpp"
#include "core/change_message.hpp"
#include "yuxi/config/client.hpp"
#include "yuxi/config/lock.hpp"

namespace {

using namespace yuxi::config::bench;
using yuxi::config::Batch;
using yuxi::config::Client;
using yuxi::config::decode_batch;
using yuxi::config::kMaxMessageBytes;
namespace agent = yuxi::config::agent;
namespace test = yuxi::config::test;

// stdout and stderr to `log`; die() kills it.
pid_t spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env,
            const fs::path& log) {
    test::FileActions actions;
    actions.log_to(log, test::LogMode::truncate);
    return start_child(argv, env, actions);
}

// The environment without anything that would configure an agent.
std::vector<std::string> clean_environment() {
    return test::child_environment(
        {"DATABASE_URL", "CONFIG_MODE", "YUXI_CONFIG", "REDIS_", "POD_NAME", "LOG_"});
}

// ---------------------------------------------------------------------------------------
// PostgreSQL.

// A database of its own with deploy/sql applied and one config row, `bench` = 0.
struct Database {
    std::string name, url;
    PGconn* conn = nullptr;  // the writer

    explicit Database(const std::string& tag) {
        name = "yuxi_fanout_" + tag + "_" + std::to_string(::getpid());
        url = create_database(name);
        conn = connect_or_die(url);
        apply_schema_with_bench_row(conn);
    }
    ~Database() {
        PQfinish(conn);
        drop_database(name);
    }
    Database(const Database&) = delete;
    Database& operator=(const Database&) = delete;

    // One UPDATE and the revision it produced, in one round trip: the statements of one
    // simple query run in one implicit transaction, and the trigger leaves the revision
    // in a transaction-local setting. Returns the revision; `commit_us` the round trip.
    std::uint64_t update(long value, double& commit_us) {
        const std::string sql = "UPDATE system_configs SET value = '" + std::to_string(value) +
                                "' WHERE key = 'bench'; "
                                "SELECT current_setting('yuxi_config.revision')";
        const auto t0 = Clock::now();
        if (PQsendQuery(conn, sql.c_str()) == 0) {
            die(std::string("send: ") + PQerrorMessage(conn));
        }
        std::uint64_t rev = 0;
        while (PGresult* r = PQgetResult(conn)) {
            const ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
                rev = std::strtoull(PQgetvalue(r, 0, 0), nullptr, 10);
            } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                const std::string msg = PQerrorMessage(conn);
                PQclear(r);
                die("UPDATE failed: " + msg);
            }
            PQclear(r);
        }
        commit_us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
        if (rev == 0) {
            die("the UPDATE returned no revision");
        }
        return rev;
    }

    int agent_connections() {
        return std::stoi(
            scalar_or_die(conn,
                          "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                          "'yuxi-config-agent' AND datname = current_database()"));
    }
};

// ---------------------------------------------------------------------------------------
// Redis: a private server and a blocking connection.

std::string redis_server_bin() {
    if (const char* v = std::getenv("YUXI_TEST_REDIS_SERVER"); v != nullptr && *v != '\0') {
        return v;
    }
    for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
        if (fs::exists(p)) {
            return p;
        }
    }
    die("no redis-server (set YUXI_TEST_REDIS_SERVER)");
}

struct RedisDeleter {
    void operator()(redisContext* c) const noexcept { redisFree(c); }
};
using RedisPtr = std::unique_ptr<redisContext, RedisDeleter>;

RedisPtr redis_connect(std::uint16_t port) {
    RedisPtr c(redisConnect("127.0.0.1", port));
    if (c == nullptr || c->err != 0) {
        return nullptr;
    }
    return c;
}

// A reply's integer or text, or die.
std::string redis_text(redisContext* c, const char* fmt, const std::string& a = {},
                       const std::string& b = {}) {
    auto* r =
        static_cast<redisReply*>(redisCommand(c, fmt, a.data(), a.size(), b.data(), b.size()));
    if (r == nullptr) {
        die("Redis: connection lost");
    }
    std::string out;
    if (r->type == REDIS_REPLY_ERROR) {
        const std::string e(r->str, r->len);
        freeReplyObject(r);
        die("Redis: " + e);
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        out = std::to_string(r->integer);
    } else if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) {
        out.assign(r->str, r->len);
    }
    freeReplyObject(r);
    return out;
}

class RedisServer {
  public:
    explicit RedisServer(const fs::path& dir) : dir_(dir) {
        port_ = test::free_port();
        fs::create_directories(dir_);
        pid_ = spawn({redis_server_bin(), "--dir", dir_.string(), "--port", std::to_string(port_),
                      "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize",
                      "no", "--loglevel", "warning", "--maxclients", "10000"},
                     clean_environment(), dir_ / "redis.log");
        const auto deadline = Clock::now() + 10s;
        while (!redis_connect(port_)) {
            if (Clock::now() > deadline) {
                die("redis-server did not start (" + (dir_ / "redis.log").string() + ")");
            }
            std::this_thread::sleep_for(10ms);
        }
    }
    ~RedisServer() {
        ::kill(pid_, SIGKILL);
        reap_child(pid_);
    }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;
    std::uint16_t port() const noexcept { return port_; }

  private:
    fs::path dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

// ---------------------------------------------------------------------------------------
// Agents.

// relay: the fleet as deployed (documents signed); unsigned: the same with
// --insecure-redis, to price the signatures; direct: every agent listens to PostgreSQL.
enum class Mode { relay, direct, unsigned_relay };
constexpr int kModes = 3;
const char* to_string(Mode m) {
    return m == Mode::relay ? "relay" : m == Mode::direct ? "direct" : "relay-unsigned";
}

class Fleet {
  public:
    Fleet(Mode mode, int n, const Database& db, const RedisServer& redis, const fs::path& dir,
          const std::string& level)
        : mode_(mode), dir_(dir) {
        fs::create_directories(dir_);
        for (int i = 0; i < n; ++i) {
            const std::string seg = "yuxi-fanout-" + std::string(to_string(mode)) + "-" +
                                    std::to_string(i) + "-" + std::to_string(::getpid());
            unlink_segment(seg);
            leftovers().segments.insert(seg);
            segments_.push_back(seg);
            std::vector<std::string> env = clean_environment();
            env.insert(env.end(),
                       {"CONFIG_MODE=database", "DATABASE_URL=" + db.url, "REDIS_HOST=127.0.0.1",
                        "REDIS_PORT=" + std::to_string(redis.port()),
                        "POD_NAME=" + std::string(to_string(mode)) + std::to_string(i),
                        "YUXI_CONFIG_SEGMENT=" + seg, "YUXI_CONFIG_HTTP=127.0.0.1:0",
                        "LOG_LEVEL=" + level});
            if (mode == Mode::direct) {
                env.emplace_back("YUXI_CONFIG_RELAY=off");
            }
            // The bench's key (base64 of 32 bytes); --insecure-redis for the unsigned fleet.
            env.emplace_back(
                mode == Mode::unsigned_relay
                    ? "YUXI_CONFIG_INSECURE_REDIS=true"
                    : "YUXI_CONFIG_SIGNING_KEY=eXV4aS1jb25maWctYmVuY2gtc2lnbmluZy1rZXktMDAwMDE=");
            logs_.push_back(dir_ / (std::string(to_string(mode)) + std::to_string(i) + ".log"));
            pids_.push_back(spawn({YUXI_AGENT_BIN}, env, logs_.back()));
        }
    }
    ~Fleet() {
        clients_.clear();
        stop_agents(pids_, segments_);
    }
    Fleet(const Fleet&) = delete;
    Fleet& operator=(const Fleet&) = delete;

    // Opens every segment once its agent published it.
    void open_all(std::chrono::seconds timeout = 60s) {
        for (const std::string& s : segments_) {
            clients_.push_back(open_segment(s, timeout, "logs in " + dir_.string()));
        }
    }

    // Waits until every segment shows `rev`; the time the last one did.
    Clock::time_point wait_all(std::uint64_t rev) {
        for (std::size_t i = 0; i < clients_.size(); ++i) {
            if (!clients_[i].wait_for_revision(rev, 10s)) {
                die(std::string(to_string(mode_)) + " agent " + std::to_string(i) +
                    " did not reach revision " + std::to_string(rev) + " (at " +
                    std::to_string(clients_[i].revision()) + "; logs in " + dir_.string() + ")");
            }
        }
        return Clock::now();
    }

    std::vector<Client>& clients() { return clients_; }

    // The CPU time (user + system) all of this fleet's agents have used, in microseconds:
    // /proc/PID/stat's fields 14 and 15, in clock ticks.
    double cpu_us() const {
        double ticks = 0;
        for (const pid_t pid : pids_) {
            const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
            const auto close = stat.rfind(')');
            if (close == std::string::npos) {
                continue;
            }
            std::istringstream fields(stat.substr(close + 2));
            std::string f;
            for (int i = 3; i <= 15 && fields >> f; ++i) {
                if (i >= 14) {
                    ticks += std::strtod(f.c_str(), nullptr);
                }
            }
        }
        return ticks * 1e6 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }

    // Warnings and errors the agents logged (at LOG_LEVEL=warn: every line).
    std::map<std::string, int> log_lines() const {
        std::map<std::string, int> out;
        for (const fs::path& p : logs_) {
            std::istringstream in(read_text(p));
            std::string line;
            while (std::getline(in, line)) {
                // Drop the timestamp and the pod-specific parts: count by message shape.
                const auto at = line.find(']', line.find(']') + 1);
                std::string msg = at == std::string::npos ? line : line.substr(at + 1);
                for (char& c : msg) {
                    c = std::isdigit(static_cast<unsigned char>(c)) != 0 ? '#' : c;
                }
                ++out[msg.substr(0, 160)];
            }
        }
        return out;
    }

  private:
    Mode mode_;
    fs::path dir_;
    std::vector<std::string> segments_;
    std::vector<fs::path> logs_;
    std::vector<pid_t> pids_;
    std::vector<Client> clients_;
};

// ---------------------------------------------------------------------------------------
// The machine.

std::string machine_activity() {
    std::string psi = "n/a";
    std::ifstream in("/proc/pressure/cpu");
    std::string line;
    if (std::getline(in, line)) {
        const auto a = line.find("avg10=");
        if (a != std::string::npos) {
            psi = line.substr(a + 6, line.find(' ', a) - a - 6) + "%";
        }
    }
    std::string load = read_text("/proc/loadavg");
    load = load.substr(0, load.find(' ', load.find(' ', load.find(' ') + 1) + 1));
    return "load " + load + ", CPU pressure avg10 " + psi;
}

// redis-server's CPU time so far (user + system), in microseconds.
double redis_cpu_us(redisContext* c) {
    const std::string info = redis_text(c, "INFO cpu");
    auto field = [&](const char* name) {
        const auto at = info.find(name);
        return at == std::string::npos
                   ? 0.0
                   : std::strtod(info.c_str() + at + std::strlen(name), nullptr);
    };
    return (field("used_cpu_sys:") + field("used_cpu_user:")) * 1e6;
}

// ---------------------------------------------------------------------------------------
// 1. Fan-out to N segments.

struct FanoutResult {
    int n = 0;
    Stats visible[kModes], commit[kModes];
    int connections_before[kModes] = {}, connections_after[kModes] = {};
    // CPU time per write, over the measured loop: all N agents, and the fleet's Redis.
    double agents_cpu_us[kModes] = {}, redis_cpu_us[kModes] = {};
};

FanoutResult bench_fanout(int n, int updates, const fs::path& dir, const std::string& level) {
    FanoutResult out;
    out.n = n;
    const std::string tag = std::to_string(n);
    Database db_relay("r" + tag), db_direct("d" + tag), db_unsigned("u" + tag);
    RedisServer redis_relay(dir / ("redis-r" + tag));
    RedisServer redis_direct(dir / ("redis-d" + tag));
    RedisServer redis_unsigned(dir / ("redis-u" + tag));
    Fleet relay(Mode::relay, n, db_relay, redis_relay, dir / ("fleet-r" + tag), level);
    Fleet direct(Mode::direct, n, db_direct, redis_direct, dir / ("fleet-d" + tag), level);
    Fleet unsigned_relay(Mode::unsigned_relay, n, db_unsigned, redis_unsigned,
                         dir / ("fleet-u" + tag), level);
    relay.open_all();
    direct.open_all();
    unsigned_relay.open_all();

    // The lease is held and the followers let PostgreSQL go; every direct agent listens.
    RedisPtr rc = redis_connect(redis_relay.port());
    RedisPtr ru = redis_connect(redis_unsigned.port());
    const auto deadline = Clock::now() + 30s;
    while (redis_text(rc.get(), "EXISTS yuxi:config:relay") != "1" ||
           redis_text(ru.get(), "EXISTS yuxi:config:relay") != "1" ||
           db_relay.agent_connections() > 2 || db_unsigned.agent_connections() > 2 ||
           db_direct.agent_connections() < n) {
        if (Clock::now() > deadline) {
            die("fleets did not settle: relay " + std::to_string(db_relay.agent_connections()) +
                " connections, direct " + std::to_string(db_direct.agent_connections()));
        }
        std::this_thread::sleep_for(50ms);
    }
    std::this_thread::sleep_for(1500ms);  // followers release theirs within ~1 s
    Database* dbs[kModes] = {&db_relay, &db_direct, &db_unsigned};
    Fleet* fleets[kModes] = {&relay, &direct, &unsigned_relay};
    for (int m = 0; m < kModes; ++m) {
        out.connections_before[m] = dbs[m]->agent_connections();
    }

    std::vector<double> visible[kModes], commit[kModes];
    long value = 0;
    const int warmup = 20;
    RedisPtr rd = redis_connect(redis_direct.port());
    redisContext* redis_of[kModes] = {rc.get(), rd.get(), ru.get()};
    double agents_cpu0[kModes], redis_cpu0[kModes];
    for (int m = 0; m < kModes; ++m) {
        agents_cpu0[m] = fleets[m]->cpu_us();
        redis_cpu0[m] = redis_cpu_us(redis_of[m]);
    }
    for (int i = 0; i < warmup + updates; ++i) {
        // Rotate which fleet goes first, so that none always follows another.
        for (int k = 0; k < kModes; ++k) {
            const int m = (i + k) % kModes;
            double commit_us = 0;
            const auto t0 = Clock::now();
            const std::uint64_t rev = dbs[m]->update(++value, commit_us);
            const auto t1 = fleets[m]->wait_all(rev);
            if (i >= warmup) {
                visible[m].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
                commit[m].push_back(commit_us);
            }
            std::this_thread::sleep_for(500us);  // let everything go idle, as between writes
        }
    }
    for (int m = 0; m < kModes; ++m) {
        out.agents_cpu_us[m] = (fleets[m]->cpu_us() - agents_cpu0[m]) / (warmup + updates);
        out.redis_cpu_us[m] = (redis_cpu_us(redis_of[m]) - redis_cpu0[m]) / (warmup + updates);
    }
    // Every segment holds the last value its fleet was sent.
    for (int m = 0; m < kModes; ++m) {
        for (Client& c : fleets[m]->clients()) {
            if (!c.get("bench")) {
                die("a segment lost the key");
            }
        }
        out.connections_after[m] = dbs[m]->agent_connections();
        out.visible[m] = stats_of(visible[m]);
        out.commit[m] = stats_of(commit[m]);
    }
    for (int m = 0; m < kModes; ++m) {
        const auto lines = fleets[m]->log_lines();
        if (!lines.empty()) {
            std::fprintf(stderr, "-- N=%d %s fleet: agent log lines (level %s):\n", n,
                         to_string(static_cast<Mode>(m)), level.c_str());
            for (const auto& [msg, count] : lines) {
                std::fprintf(stderr, "   %4d × %s\n", count, msg.c_str());
            }
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------
// 2. Read path: Redis GET against Client::get; 3. the lock.

struct ReadResult {
    Stats redis_us;
    double client_ns_best = 0, client_ns_median = 0;
};

ReadResult bench_read(const fs::path& dir, const std::string& level) {
    Database db("read");
    RedisServer redis(dir / "redis-read");
    const std::string value = "\"" + std::string(98, 'v') + "\"";  // 100 bytes of JSON text
    exec_or_die(db.conn,
                "INSERT INTO system_configs (key, value) VALUES ('read100', '" + value + "')");
    Fleet fleet(Mode::relay, 1, db, redis, dir / "fleet-read", level);
    fleet.open_all();
    Client& client = fleet.clients()[0];
    const auto deadline = Clock::now() + 10s;
    while (!client.get("read100")) {
        if (Clock::now() > deadline) {
            die("read100 never reached the segment");
        }
        std::this_thread::sleep_for(5ms);
    }
    if (client.get("read100")->size() != 100) {
        die("the segment's value is not 100 bytes");
    }
    RedisPtr rc = redis_connect(redis.port());
    redis_text(rc.get(), "SET %b %b", "read100", value);

    ReadResult out;
    std::vector<double> redis_us, client_ns;
    std::size_t bytes = 0;
    for (int round = 0; round < 7; ++round) {
        for (int i = 0; i < 5000; ++i) {
            const auto t0 = Clock::now();
            auto* r = static_cast<redisReply*>(redisCommand(rc.get(), "GET read100"));
            const auto t1 = Clock::now();
            if (r == nullptr || r->type != REDIS_REPLY_STRING || r->len != 100) {
                die("Redis GET failed");
            }
            bytes += r->len;
            freeReplyObject(r);
            redis_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
        constexpr int kGets = 1000000;
        const auto t0 = Clock::now();
        for (int i = 0; i < kGets; ++i) {
            bytes += client.get("read100")->size();
        }
        client_ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
                            kGets);
    }
    if (bytes == 0) {
        die("no bytes read");
    }
    out.redis_us = stats_of(redis_us);
    std::sort(client_ns.begin(), client_ns.end());
    out.client_ns_best = client_ns.front();
    out.client_ns_median = client_ns[client_ns.size() / 2];
    return out;
}

struct LockResult {
    Stats round_trip_us, acquire_us, release_us;
};

LockResult bench_lock(const fs::path& dir) {
    RedisServer redis(dir / "redis-lock");
    yuxi::config::RedisEndpoint ep;
    ep.host = "127.0.0.1";
    ep.port = redis.port();
    yuxi::config::DistributedLock lock(ep, "bench", 10s);
    std::vector<double> rt, acq, rel;
    for (int i = 0; i < 5200; ++i) {
        const auto t0 = Clock::now();
        if (!lock.try_acquire()) {
            die("try_acquire failed on a free lock");
        }
        const auto t1 = Clock::now();
        if (!lock.release()) {
            die("release failed");
        }
        const auto t2 = Clock::now();
        if (i >= 200) {
            rt.push_back(std::chrono::duration<double, std::micro>(t2 - t0).count());
            acq.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
            rel.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
        }
    }
    return {stats_of(rt), stats_of(acq), stats_of(rel)};
}

// ---------------------------------------------------------------------------------------
// 4. The fleet model: many follower subscriptions on one libevent loop.

constexpr const char* kBareChannel = "yuxi:bench:bare";

// What one follower keeps: the applied revision and its entries, per channel (the relay's
// channel and the bare one are two independent streams of batches).
struct Follower {
    std::uint64_t revision[2] = {0, 0};
    std::map<std::string, std::string> entries[2];
    redisAsyncContext* ctx = nullptr;
    bool subscribed = false;
    class Subscribers* owner = nullptr;
};

class Subscribers {
  public:
    // `count` connections to Redis on `port`, each subscribed to the relay's channel and
    // the bare one, every follower starting at `revision` on both.
    Subscribers(std::uint16_t port, int count, std::uint64_t relay_revision) : port_(port) {
        base_ = event_base_new();
        followers_.resize(static_cast<std::size_t>(count));
        for (Follower& f : followers_) {
            f.revision[0] = relay_revision;
            f.revision[1] = 1000000;  // bare_message() numbers from here
            f.owner = this;
        }
        // A timer keeps the loop alive and lets stop() end it.
        tick_ = event_new(
            base_, -1, EV_PERSIST,
            [](evutil_socket_t, short, void* self) {
                auto* s = static_cast<Subscribers*>(self);
                if (s->stop_) {
                    event_base_loopbreak(s->base_);
                }
            },
            this);
        timeval tv{0, 20000};
        event_add(tick_, &tv);
        // Connect in chunks: a burst of thousands of connects overflows the accept backlog.
        for (std::size_t at = 0; at < followers_.size(); at += 200) {
            const std::size_t end = std::min(followers_.size(), at + 200);
            for (std::size_t i = at; i < end; ++i) {
                connect(followers_[i]);
            }
            const auto deadline = Clock::now() + 20s;
            while (subscribed_ < static_cast<int>(end)) {
                if (Clock::now() > deadline) {
                    die("only " + std::to_string(subscribed_) + " subscriptions of " +
                        std::to_string(end));
                }
                event_base_loop(base_, EVLOOP_ONCE);
            }
        }
        thread_ = std::thread([this] { event_base_dispatch(base_); });
    }
    ~Subscribers() {
        stop_ = true;
        thread_.join();
        for (Follower& f : followers_) {
            if (f.ctx != nullptr) {
                redisAsyncFree(f.ctx);  // no callbacks run: the loop has stopped
            }
        }
        event_free(tick_);
        event_base_free(base_);
    }
    Subscribers(const Subscribers&) = delete;
    Subscribers& operator=(const Subscribers&) = delete;

    // Expect revision `rev` on `channel` (0 relay, 1 bare); returns once the last follower
    // applied it, with the times the last received and the last applied it.
    void expect(int channel, std::uint64_t rev) {
        std::lock_guard lock(mu_);
        want_channel_ = channel;
        want_rev_ = rev;
        applied_ = 0;
        apply_ns_ = 0;
        done_ = false;
    }
    // The times the first follower received it and the last applied it, and the CPU time
    // the followers spent decoding and applying it (ns, summed over all of them).
    bool wait(Clock::time_point& first_received, Clock::time_point& last_applied,
              double& apply_ns) {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, 10s, [&] { return done_; })) {
            return false;
        }
        first_received = first_received_;
        last_applied = last_applied_;
        apply_ns = apply_ns_;
        return true;
    }
    std::uint64_t gaps() const { return gaps_; }
    std::uint64_t bad() const { return bad_; }
    std::size_t message_bytes() const { return message_bytes_; }
    std::string last_relay_message() {
        std::lock_guard lock(mu_);
        return last_relay_message_;
    }
    int size() const { return static_cast<int>(followers_.size()); }

  private:
    void connect(Follower& f) {
        f.ctx = redisAsyncConnect("127.0.0.1", port_);
        if (f.ctx == nullptr || f.ctx->err != 0) {
            die("redisAsyncConnect failed");
        }
        f.ctx->data = &f;
        redisLibeventAttach(f.ctx, base_);
        redisAsyncCommand(f.ctx, &Subscribers::on_reply, &f, "SUBSCRIBE %s %s",
                          std::string(yuxi::config::kChangesChannel).c_str(), kBareChannel);
    }

    static void on_reply(redisAsyncContext*, void* r, void* privdata) {
        auto* reply = static_cast<redisReply*>(r);
        auto* f = static_cast<Follower*>(privdata);
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
            return;
        }
        const std::string_view kind(reply->element[0]->str, reply->element[0]->len);
        if (kind == "subscribe") {
            if (reply->element[2]->integer == 2 && !f->subscribed) {
                f->subscribed = true;
                ++f->owner->subscribed_;
            }
            return;
        }
        if (kind != "message") {
            return;
        }
        f->owner->on_message(*f, reply);
    }

    // What a follower does with a message: decode it, apply it if it follows its revision.
    void on_message(Follower& f, redisReply* reply) {
        const auto received = Clock::now();
        const std::string_view channel(reply->element[1]->str, reply->element[1]->len);
        const std::string_view text(reply->element[2]->str, reply->element[2]->len);
        const int ch = channel == kBareChannel ? 1 : 0;
        auto decoded = decode_batch(text, kMaxMessageBytes);
        Batch* b = decoded ? &*decoded : nullptr;
        if (b == nullptr) {
            ++bad_;
            return;
        }
        if (b->prev != f.revision[ch]) {
            ++gaps_;  // a follower would catch up from the stream; here: take it anyway
        }
        f.revision[ch] = b->revision;
        for (yuxi::config::Change& c : b->entries) {
            if (c.value) {
                f.entries[ch][c.key] = std::move(*c.value);
            } else {
                f.entries[ch].erase(c.key);
            }
        }
        const auto applied = Clock::now();
        std::lock_guard lock(mu_);
        if (ch == 0) {
            message_bytes_ = text.size();
            if (last_relay_message_.size() != text.size()) {
                last_relay_message_.assign(text);
            }
        }
        if (ch != want_channel_ || b->revision != want_rev_) {
            return;
        }
        if (applied_++ == 0) {
            first_received_ = received;
        }
        last_applied_ = applied;
        apply_ns_ += std::chrono::duration<double, std::nano>(applied - received).count();
        if (applied_ == static_cast<int>(followers_.size())) {
            done_ = true;
            cv_.notify_one();
        }
    }

    std::uint16_t port_;
    event_base* base_ = nullptr;
    event* tick_ = nullptr;
    std::vector<Follower> followers_;
    std::thread thread_;
    std::atomic<bool> stop_{false};
    int subscribed_ = 0;
    std::uint64_t gaps_ = 0, bad_ = 0;
    std::size_t message_bytes_ = 0;

    std::mutex mu_;
    std::condition_variable cv_;
    int want_channel_ = -1;
    std::uint64_t want_rev_ = 0;
    int applied_ = 0;
    double apply_ns_ = 0;
    bool done_ = false;
    Clock::time_point first_received_, last_applied_;
    std::string last_relay_message_;
};

struct FleetResult {
    int subscribers = 0;
    std::size_t relay_bytes = 0, bare_bytes = 0;
    Stats relay_applied, relay_first, relay_commit, bare_applied, bare_first;
    Stats decode_us;  // one follower's decode + apply of one message
    std::uint64_t gaps = 0, bad = 0;
    double redis_cpu_us_per_delivery = 0;  // redis-server's CPU time / messages delivered
};

// A bare message: the relay's last message with its own revision numbers, so the same size
// up to the digits of the numbers.
std::string bare_message(const std::string& relay_text, std::uint64_t rev) {
    auto decoded = decode_batch(relay_text);
    Batch* b = decoded ? &*decoded : nullptr;
    if (b == nullptr) {
        die("cannot decode the relay's message");
    }
    // Keep the digit count of the relay's revisions: start far from 0.
    b->prev = 1000000 + rev - 1;
    b->revision = 1000000 + rev;
    return yuxi::config::encode_batch(*b);
}

FleetResult bench_fleet(int subscribers, int samples, bool with_relay, const fs::path& dir,
                        const std::string& level) {
    FleetResult out;
    out.subscribers = subscribers;
    std::optional<Database> db;
    RedisServer redis(dir / ("redis-fleet-" + std::to_string(subscribers)));
    std::optional<Fleet> fleet;
    std::uint64_t rev0 = 0;
    if (with_relay) {
        db.emplace("fleet");
        fleet.emplace(Mode::relay, 1, *db, redis, dir / "fleet-model", level);
        fleet->open_all();
        RedisPtr rc = redis_connect(redis.port());
        const auto deadline = Clock::now() + 30s;
        while (redis_text(rc.get(), "EXISTS yuxi:config:relay") != "1") {
            if (Clock::now() > deadline) {
                die("the relay took no lease");
            }
            std::this_thread::sleep_for(20ms);
        }
        rev0 = fleet->clients()[0].revision();
    }
    Subscribers subs(redis.port(), subscribers, rev0);
    RedisPtr publisher = redis_connect(redis.port());

    // The relay's message for one update, as a template for the bare one (a value like
    // the bench's: a number, so the same size whatever the path).
    std::string relay_text;
    long value = 100000;
    std::uint64_t bare_rev = 0;
    std::vector<double> ra, rr, rc_us, ba, br, dec;
    const int warmup = 10;
    double cpu0 = 0;
    for (int i = 0; i < warmup + samples; ++i) {
        if (i == warmup) {
            cpu0 = redis_cpu_us(publisher.get());
        }
        for (int k = 0; k < 2; ++k) {
            const int which = with_relay ? (i + k) % 2 : 1;  // 0 relay, 1 bare
            if (which == 0) {
                // The revision this UPDATE will produce is only known after it: expect the
                // next one (one writer, nothing else writes: revisions are consecutive).
                const std::uint64_t next =
                    std::stoull(scalar_or_die(db->conn,
                                              "SELECT last_value FROM "
                                              "yuxi_config_changes_revision_seq")) +
                    1;
                subs.expect(0, next);
                double commit_us = 0;
                const auto t0 = Clock::now();
                const std::uint64_t rev = db->update(++value, commit_us);
                if (rev != next) {
                    die("revision " + std::to_string(rev) + ", expected " + std::to_string(next));
                }
                Clock::time_point last_rx, last_ap;
                double apply_ns = 0;
                if (!subs.wait(last_rx, last_ap, apply_ns)) {
                    die("the followers did not all apply revision " + std::to_string(rev));
                }
                if (i >= warmup) {
                    ra.push_back(std::chrono::duration<double, std::micro>(last_ap - t0).count());
                    rr.push_back(std::chrono::duration<double, std::micro>(last_rx - t0).count());
                    rc_us.push_back(commit_us);
                    dec.push_back(apply_ns / 1e3 / subscribers);
                }
                if (relay_text.empty()) {
                    relay_text = subs.last_relay_message();
                }
            } else {
                if (with_relay && relay_text.empty()) {
                    continue;  // the relay goes first once, to give the message's shape
                }
                if (!with_relay && relay_text.empty()) {
                    // No relay: a message of a relay's typical shape and size.
                    yuxi::config::Batch b;
                    b.revision = 1000001;
                    b.prev = 1000000;
                    b.commit_ns = 1764489600123456789ULL;
                    b.fence = 1764489600123456ULL;
                    b.entries.push_back(
                        {yuxi::config::Namespace::config, "bench", std::string("100001"), "basic"});
                    relay_text = yuxi::config::encode_batch(b);
                }
                ++bare_rev;
                const std::string msg = bare_message(relay_text, bare_rev);
                out.bare_bytes = msg.size();
                subs.expect(1, 1000000 + bare_rev);
                const auto t0 = Clock::now();
                const std::string receivers =
                    redis_text(publisher.get(), "PUBLISH %b %b", kBareChannel, msg);
                if (receivers != std::to_string(subscribers)) {
                    die("PUBLISH reached " + receivers + " subscribers");
                }
                Clock::time_point last_rx, last_ap;
                double apply_ns = 0;
                if (!subs.wait(last_rx, last_ap, apply_ns)) {
                    die("the followers did not all apply the bare message");
                }
                if (i >= warmup) {
                    ba.push_back(std::chrono::duration<double, std::micro>(last_ap - t0).count());
                    br.push_back(std::chrono::duration<double, std::micro>(last_rx - t0).count());
                    dec.push_back(apply_ns / 1e3 / subscribers);
                }
            }
            std::this_thread::sleep_for(2ms);
        }
    }
    out.redis_cpu_us_per_delivery = (redis_cpu_us(publisher.get()) - cpu0) /
                                    static_cast<double>(ra.size() + ba.size()) / subscribers;
    out.relay_bytes = subs.message_bytes();
    out.relay_applied = stats_of(ra);
    out.relay_first = stats_of(rr);
    out.decode_us = stats_of(dec);
    out.relay_commit = stats_of(rc_us);
    out.bare_applied = stats_of(ba);
    out.bare_first = stats_of(br);
    out.gaps = subs.gaps();
    out.bad = subs.bad();
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<int> sizes = {1, 5, 20};
    int updates = 300;
    int subscribers = 1000;
    int fleet_samples = 200;
    int bare_subscribers = 5000;
    std::string sections = "fanout,read,lock,fleet,bare";
    std::string level = "warn";
    const std::string usage =
        "usage: fanout_bench [--fleet 1,5,20] [--updates N] [--subscribers N] "
        "[--fleet-samples N] [--bare-subscribers N] [--sections fanout,read,lock,fleet,bare] "
        "[--agent-log-level L]";
    parse_options(argc, argv, usage, [&](const std::string& name, const std::string& value) {
        if (name == "--fleet") {
            sizes.clear();
            std::istringstream in(value);
            for (std::string n; std::getline(in, n, ',');) {
                sizes.push_back(std::stoi(n));
            }
        } else if (name == "--updates") {
            updates = std::stoi(value);
        } else if (name == "--subscribers") {
            subscribers = std::stoi(value);
        } else if (name == "--fleet-samples") {
            fleet_samples = std::stoi(value);
        } else if (name == "--bare-subscribers") {
            bare_subscribers = std::stoi(value);
        } else if (name == "--sections") {
            sections = value;
        } else if (name == "--agent-log-level") {
            level = value;
        } else {
            return false;
        }
        return true;
    });
    auto wanted = [&](const char* s) {
        return ("," + sections + ",").find("," + std::string(s) + ",") != std::string::npos;
    };
    (void)use_test_server();
    ::signal(SIGPIPE, SIG_IGN);
    // Thousands of subscriptions: one descriptor each, here and in redis-server.
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    const fs::path dir = fs::temp_directory_path() / ("yuxi-fanout-" + std::to_string(::getpid()));
    fs::create_directories(dir);

    std::string pg_version, redis_version;
    {
        PGconn* c = connect_or_die(leftovers().server);
        pg_version = scalar_or_die(c, "SHOW server_version");
        PQfinish(c);
    }
    std::printf(
        "# fanout_bench: %s, %u hardware threads; PostgreSQL %s, %s, all over "
        "loopback\n\n",
        cpu_model().c_str(), std::thread::hardware_concurrency(), pg_version.c_str(),
        redis_server_bin().c_str());
    std::printf("At start: %s\n\n", machine_activity().c_str());
    std::fflush(stdout);

    if (wanted("fanout")) {
        std::vector<FanoutResult> results;
        for (const int n : sizes) {
            std::fprintf(stderr, "fanout: N = %d, %d updates per mode ...\n", n, updates);
            results.push_back(
                bench_fanout(n, updates, dir / ("fanout-" + std::to_string(n)), level));
        }
        std::printf("## Fan-out: UPDATE sent → new revision in all N segments (ms)\n\n");
        std::printf(
            "| N | mode | n | p50 | p90 | p99 | max | commit p50 (µs) | commit p99 (µs) "
            "| PostgreSQL connections (settled / after the run) |\n");
        std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (const FanoutResult& r : results) {
            for (int m = 0; m < kModes; ++m) {
                const Stats& v = r.visible[m];
                std::printf(
                    "| %d | %s | %zu | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %d / %d "
                    "|\n",
                    r.n, to_string(static_cast<Mode>(m)), v.n, v.p50 / 1e3, v.p90 / 1e3,
                    v.p99 / 1e3, v.max / 1e3, r.commit[m].p50, r.commit[m].p99,
                    r.connections_before[m], r.connections_after[m]);
            }
        }
        std::printf(
            "\n| N | relay / direct p50 | relay / direct p99 | commit relay / direct "
            "(p50) |\n|---:|---:|---:|---:|\n");
        for (const FanoutResult& r : results) {
            std::printf("| %d | %.2f× | %.2f× | %.2f× |\n", r.n,
                        r.visible[0].p50 / r.visible[1].p50, r.visible[0].p99 / r.visible[1].p99,
                        r.commit[0].p50 / r.commit[1].p50);
        }
        std::printf("\n| N | signed / unsigned p50 | signed / unsigned p99 |\n|---:|---:|---:|\n");
        for (const FanoutResult& r : results) {
            std::printf("| %d | %.2f× | %.2f× |\n", r.n, r.visible[0].p50 / r.visible[2].p50,
                        r.visible[0].p99 / r.visible[2].p99);
        }
        std::printf(
            "\n| N | mode | CPU per write: all agents (µs) | the fleet's Redis (µs) |\n"
            "|---:|---|---:|---:|\n");
        for (const FanoutResult& r : results) {
            for (int m = 0; m < kModes; ++m) {
                std::printf("| %d | %s | %.0f | %.0f |\n", r.n, to_string(static_cast<Mode>(m)),
                            r.agents_cpu_us[m], r.redis_cpu_us[m]);
            }
        }
        std::printf("\nAfter fan-out: %s\n\n", machine_activity().c_str());
        std::fflush(stdout);
    }

    if (wanted("read")) {
        std::fprintf(stderr, "read: Redis GET vs Client::get ...\n");
        const ReadResult r = bench_read(dir / "read", level);
        std::printf(
            "## Reads of one 100-byte value\n\n| path | p50 | mean | p99 |\n"
            "|---|---:|---:|---:|\n");
        std::printf(
            "| Redis `GET` over loopback (hiredis, blocking), %zu reads | %.1f µs | %.1f "
            "µs | %.1f µs |\n",
            r.redis_us.n, r.redis_us.p50, r.redis_us.mean, r.redis_us.p99);
        std::printf(
            "| `Client::get` (copy out of the segment), 7 × 1,000,000 reads | "
            "best round %.1f ns | median round %.1f ns | |\n",
            r.client_ns_best, r.client_ns_median);
        std::printf("\nratio: Redis GET p50 / Client::get (median round) = %.0f×; means: %.0f×\n\n",
                    r.redis_us.p50 * 1e3 / r.client_ns_median,
                    r.redis_us.mean * 1e3 / r.client_ns_median);
        std::fflush(stdout);
    }

    if (wanted("lock")) {
        std::fprintf(stderr, "lock ...\n");
        const LockResult r = bench_lock(dir / "lock");
        std::printf(
            "## DistributedLock over loopback (µs)\n\n| operation | n | p50 | mean | p99 "
            "|\n|---|---:|---:|---:|---:|\n");
        const std::pair<const char*, const Stats*> rows[] = {
            {"`try_acquire` + `release`", &r.round_trip_us},
            {"`try_acquire` alone", &r.acquire_us},
            {"`release` alone", &r.release_us}};
        for (const auto& [what, s] : rows) {
            std::printf("| %s | %zu | %.1f | %.1f | %.1f |\n", what, s->n, s->p50, s->mean, s->p99);
        }
        std::printf("\n");
        std::fflush(stdout);
    }

    auto print_fleet = [](const FleetResult& f, bool with_relay) {
        std::printf(
            "| path (%d subscribers) | n | p50 | p90 | p99 | max |\n"
            "|---|---:|---:|---:|---:|---:|\n",
            f.subscribers);
        auto row = [](const char* what, const Stats& s) {
            std::printf("| %s | %zu | %.2f | %.2f | %.2f | %.2f |\n", what, s.n, s.p50 / 1e3,
                        s.p90 / 1e3, s.p99 / 1e3, s.max / 1e3);
        };
        if (with_relay) {
            row("relay: UPDATE sent → last follower applied", f.relay_applied);
            row("relay: UPDATE sent → first follower received", f.relay_first);
            row("relay: the UPDATE's round trip (commit)", f.relay_commit);
        }
        row("bare PUBLISH sent → last follower applied", f.bare_applied);
        row("bare PUBLISH sent → first follower received", f.bare_first);
        std::printf(
            "\none follower's decode_batch + apply of one message: p50 %.2f µs, mean "
            "%.2f µs (mean per sample over the %d followers)\n",
            f.decode_us.p50, f.decode_us.mean, f.subscribers);
        std::printf(
            "redis-server CPU time per message delivered to one subscriber: %.2f µs "
            "(INFO cpu over the timed samples)\n",
            f.redis_cpu_us_per_delivery);
        std::printf(
            "message sizes: relay %zu bytes, bare %zu bytes; followers' gaps %llu, "
            "undecodable %llu\n",
            f.relay_bytes, f.bare_bytes, static_cast<unsigned long long>(f.gaps),
            static_cast<unsigned long long>(f.bad));
        if (with_relay) {
            std::printf(
                "relay / bare (applied): p50 %.2f×, p99 %.2f×; relay minus bare p50: %.2f "
                "ms\n",
                f.relay_applied.p50 / f.bare_applied.p50, f.relay_applied.p99 / f.bare_applied.p99,
                (f.relay_applied.p50 - f.bare_applied.p50) / 1e3);
        }
        std::printf("\n");
    };
    if (wanted("fleet")) {
        std::fprintf(stderr, "fleet model: %d subscribers, %d samples per path ...\n", subscribers,
                     fleet_samples);
        const FleetResult f = bench_fleet(subscribers, fleet_samples, true, dir / "fleet", level);
        std::printf("## Fleet model: %d follower subscriptions in one process (ms)\n\n",
                    subscribers);
        print_fleet(f, true);
        std::fflush(stdout);
    }
    if (wanted("bare")) {
        for (const int n : {1000, bare_subscribers}) {
            if (n == 1000 && bare_subscribers == 1000) {
                continue;
            }
            std::fprintf(stderr, "bare PUBLISH: %d subscribers ...\n", n);
            const FleetResult f = bench_fleet(n, fleet_samples, false, dir / "bare", level);
            std::printf("## Bare PUBLISH to %d subscriptions in one process (ms)\n\n", n);
            print_fleet(f, false);
            std::fflush(stdout);
        }
    }
    std::printf("At end: %s\n", machine_activity().c_str());
    cleanup();
    std::error_code ec;
    fs::remove_all(dir, ec);
    return 0;
}
