// The agent's HTTP surface end to end: the real binary, real sockets. Status codes of
// /healthz, /readyz and /metrics; the exposition parsed strictly and its values checked
// against the segment; readiness flipping when PostgreSQL goes away and comes back (a
// private server); slow and hostile clients (slowloris, oversized headers, connections
// over the cap, a client that never reads) while the agent keeps publishing; SIGTERM in
// the middle of start-up and of updates, after which the segment is consistent.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <iostream>
#include <random>

#include "database_test_support.hpp"
#include "support/exposition_parser.hpp"

namespace yuxi::config::test {
namespace {

struct Response {
    int status = 0;  // 0: no answer (closed, reset or timed out)
    std::string headers;
    std::string body;
};

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Reads until the peer closes (requests say Connection: close), then parses.
Response read_response(int fd) {
    std::string raw;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        raw.append(buf, static_cast<std::size_t>(n));
    }
    Response r;
    const auto end = raw.find("\r\n\r\n");
    if (!raw.starts_with("HTTP/1.1 ") || end == std::string::npos) {
        return r;
    }
    r.status = std::atoi(raw.c_str() + 9);
    r.headers = raw.substr(0, end);
    r.body = raw.substr(end + 4);
    return r;
}

Response request(std::uint16_t port, const std::string& method, const std::string& path) {
    const int fd = connect_loopback(port);
    if (fd < 0) {
        return {};
    }
    (void)send_all(fd, method + " " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    Response r = read_response(fd);
    ::close(fd);
    return r;
}

Response get(std::uint16_t port, const std::string& path) {
    return request(port, "GET", path);
}

std::string header(const Response& r, std::string_view name) {
    std::istringstream in(r.headers);
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > name.size() + 1 && line.compare(0, name.size(), name) == 0 &&
            line[name.size()] == ':') {
            std::string v = line.substr(name.size() + 1);
            v.erase(0, v.find_first_not_of(' '));
            if (!v.empty() && v.back() == '\r') {
                v.pop_back();
            }
            return v;
        }
    }
    return {};
}

Exposition scrape(std::uint16_t port) {
    const Response r = get(port, "/metrics");
    EXPECT_EQ(r.status, 200);
    return parse_exposition(r.body);
}

// Whether the server closed `fd` (EOF or reset) within `timeout`.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        return false;
    }
    char c;
    const ssize_t n = ::recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

void write_file(const fs::path& p, const std::string& text) {
    const fs::path tmp = p.string() + ".tmp~";
    std::ofstream(tmp, std::ios::binary | std::ios::trunc) << text;
    fs::rename(tmp, p);
}

// The agent in file mode on a TOML file of its own, with the HTTP server on a free port.
class HttpFileTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = temp_dir("http");
        segment_ = "yuxi-test-http-" +
                   std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) +
                   "-" + std::to_string(::getpid());
        unlink_segment(segment_);
        config_ = dir_ / "base.toml";
        write_file(config_, toml(0));
    }

    void TearDown() override {
        agent_.kill();
        unlink_segment(segment_);
        if (HasFailure()) {
            std::cerr << "agent log:\n" << read_text(dir_ / "agent.log").substr(0, 20000);
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    static std::string toml(int generation, int keys = 20) {
        std::string t;
        for (int i = 0; i < keys; ++i) {
            t += "key_" + std::to_string(i) + " = \"g" + std::to_string(generation) + "-" +
                 std::string(64, 'x') + "\"\n";
        }
        return t;
    }

    std::vector<std::string> args(std::uint16_t port) const {
        return {"--segment",     segment_,
                "--config-file", config_.string(),
                "--metadata",    "g=" + (dir_ / "none.json").string(),
                "--http",        "127.0.0.1:" + std::to_string(port)};
    }

    // Starts the agent and waits until /readyz answers 200.
    void start() {
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = free_port();
            agent_.spawn(args(port_), {"CONFIG_MODE=file", "LOG_LEVEL=debug"}, dir_ / "agent.log");
            if (eventually([&] { return get(port_, "/readyz").status == 200; }, 10s)) {
                return;
            }
            agent_.kill();  // the port was taken meanwhile, or the agent failed
        }
        FAIL() << "the agent did not become ready";
    }

    fs::path dir_;
    fs::path config_;
    std::string segment_;
    std::uint16_t port_ = 0;
    Agent agent_;
};

TEST_F(HttpFileTest, AnswersTheProbesAndRefusesTheRest) {
    start();
    const Response health = get(port_, "/healthz");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.body, "ok\n");
    const Response ready = get(port_, "/readyz");
    EXPECT_EQ(ready.status, 200);
    EXPECT_EQ(ready.body, "ready\n");
    EXPECT_EQ(get(port_, "/healthz?verbose=1").status, 200);
    const Response metrics = get(port_, "/metrics");
    EXPECT_EQ(metrics.status, 200);
    EXPECT_EQ(header(metrics, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(get(port_, "/").status, 404);
    EXPECT_EQ(get(port_, "/metricsx").status, 404);
    EXPECT_EQ(get(port_, "/../healthz").status, 404);
    for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"}) {
        const Response r = request(port_, method, "/metrics");
        EXPECT_EQ(r.status, 405) << method;
        if (std::string_view(method) != "HEAD") {
            EXPECT_EQ(header(r, "Allow"), "GET") << method;
        }
    }
}

TEST_F(HttpFileTest, MetricsAgreeWithTheSegment) {
    start();
    const Client c = Client::open(segment_);
    const Exposition first = scrape(port_);
    EXPECT_EQ(first.value("yuxi_config_revision"), static_cast<double>(c.revision()));
    EXPECT_EQ(first.value("yuxi_config_entries"), static_cast<double>(c.health().entries));
    EXPECT_EQ(first.value("yuxi_config_segment_bytes"),
              static_cast<double>(c.health().segment_bytes));
    EXPECT_EQ(first.value("yuxi_config_ready"), 1);
    EXPECT_EQ(first.value("yuxi_config_up"), 1);
    // The metadata file is missing: the source is not up, and the state is stale.
    EXPECT_EQ(first.value("yuxi_config_source_up", {{"source", "file"}}), 0);
    EXPECT_EQ(first.value("yuxi_config_source_state", {{"state", "stale"}}), 1);
    EXPECT_GE(*first.value("yuxi_config_errors_total", {{"kind", "missing"}}), 1);
    const double fill = *first.value("yuxi_config_segment_fill_ratio");
    EXPECT_GT(fill, 0);
    EXPECT_LT(fill, 1);
    const double beat = *first.value("yuxi_config_heartbeat_timestamp_seconds");
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_NEAR(beat, now, 3);

    std::ofstream(dir_ / "none.json") << "{\"a\": 1}";
    const std::uint64_t before = c.revision();
    write_file(config_, toml(1));
    ASSERT_TRUE(until_published(
        c, [&] { return c.get("key_0") && c.get("key_0")->find("g1") != std::string::npos; }));
    ASSERT_TRUE(eventually([&] {
        return scrape(port_).value("yuxi_config_source_state", {{"state", "ok"}}) == 1;
    }));
    const Exposition second = scrape(port_);
    EXPECT_GT(c.revision(), before);
    EXPECT_EQ(second.value("yuxi_config_revision"), static_cast<double>(c.revision()));
    EXPECT_GE(*second.value("yuxi_config_updates_applied_total"),
              *first.value("yuxi_config_updates_applied_total") + 20);
    EXPECT_GT(*second.value("yuxi_config_apply_duration_seconds_count"),
              *first.value("yuxi_config_apply_duration_seconds_count"));
    EXPECT_EQ(second.value("yuxi_config_source_up", {{"source", "file"}}), 1);
    EXPECT_EQ(second.value("yuxi_config_source_state", {{"state", "stale"}}), 0);
    // Nothing of a value in the exposition: only names, words and numbers.
    EXPECT_EQ(get(port_, "/metrics").body.find("xxxxxxxx"), std::string::npos);
}

TEST_F(HttpFileTest, AnAddressInUseStopsTheAgentAtStart) {
    start();
    Agent second;
    const std::string other = segment_ + "-2";
    unlink_segment(other);
    std::vector<std::string> a = args(port_);
    a[1] = other;
    second.spawn(a, {"CONFIG_MODE=file"}, dir_ / "second.log");
    const Exit e = second.wait_exit(10s);
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 1);
    const std::string log = read_text(dir_ / "second.log");
    EXPECT_NE(log.find("cannot listen on 127.0.0.1:" + std::to_string(port_)), std::string::npos)
        << log;
    EXPECT_FALSE(fs::exists(detail::segment_path(other))) << "the segment was touched";
    unlink_segment(other);
}

// Edits the file and returns how long the change took to reach the segment.
std::chrono::milliseconds timed_edit(const Client& c, const fs::path& config, int generation,
                                     const std::string& text) {
    const auto t0 = std::chrono::steady_clock::now();
    write_file(config, text);
    const std::string want = "g" + std::to_string(generation) + "-";
    const bool ok = until_published(
        c, [&] { return c.get("key_0") && c.get("key_0")->starts_with("\"" + want); }, 5s);
    EXPECT_TRUE(ok) << "generation " << generation << " not published";
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
}

TEST_F(HttpFileTest, SlowlorisClientsDoNotDelayUpdates) {
    start();
    const Client c = Client::open(segment_);
    std::vector<int> slow;
    for (int i = 0; i < 200; ++i) {
        const int fd = connect_loopback(port_);
        ASSERT_GE(fd, 0);
        ASSERT_TRUE(send_all(fd, "GET /healthz HTTP/1.1\r\nX-Slow: "));
        slow.push_back(fd);
    }
    std::atomic<bool> stop{false};
    std::thread dribble([&] {
        while (!stop) {
            for (const int fd : slow) {
                (void)::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            }
            std::this_thread::sleep_for(1s);
        }
    });
    std::this_thread::sleep_for(1500ms);
    EXPECT_LT(timed_edit(c, config_, 1, toml(1)), 1000ms);
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(get(port_, "/healthz").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
    // The request deadline closes every slow connection, though each sends a byte a second.
    int closed = 0;
    for (const int fd : slow) {
        closed += closed_by_peer(fd, 8s) ? 1 : 0;
    }
    stop = true;
    dribble.join();
    EXPECT_EQ(closed, 200);
    for (const int fd : slow) {
        ::close(fd);
    }
    EXPECT_EQ(get(port_, "/healthz").status, 200);
}

TEST_F(HttpFileTest, OversizedRequestsAreRefused) {
    start();
    const int fd = connect_loopback(port_);
    ASSERT_GE(fd, 0);
    std::string big = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(1 << 20, 'a') +
                      "\r\nConnection: close\r\n\r\n";
    (void)send_all(fd, big);  // the agent may close before it has read everything
    const Response r = read_response(fd);
    ::close(fd);
    EXPECT_TRUE(r.status == 0 || (r.status >= 400 && r.status < 500)) << r.status;
    EXPECT_NE(r.status, 200);
    // A long request line, and a body on a GET, over their limits.
    EXPECT_NE(get(port_, "/" + std::string(64 << 10, 'p')).status, 200);
    const int body_fd = connect_loopback(port_);
    ASSERT_GE(body_fd, 0);
    (void)send_all(body_fd,
                   "GET /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\nConnection: "
                   "close\r\n\r\n" +
                       std::string(64 << 10, 'b'));
    EXPECT_NE(read_response(body_fd).status, 200);
    ::close(body_fd);
    EXPECT_EQ(get(port_, "/healthz").status, 200);
    EXPECT_TRUE(agent_.running());
}

TEST_F(HttpFileTest, ConnectionsOverTheCapAreClosed) {
    start();
    const Client c = Client::open(segment_);
    std::vector<int> fds;
    for (int i = 0; i < 300; ++i) {
        const int fd = connect_loopback(port_, 2s);
        if (fd >= 0) {
            fds.push_back(fd);
        }
    }
    // The first 256 (kMaxConnections) are held; those over it are closed unanswered.
    std::this_thread::sleep_for(500ms);
    int closed = 0;
    for (const int fd : fds) {
        closed += closed_by_peer(fd, 0ms) ? 1 : 0;
    }
    EXPECT_GE(closed, 300 - 256 - 4);
    EXPECT_LE(closed, 300 - 256 + 4);
    EXPECT_LT(timed_edit(c, config_, 2, toml(2)), 1000ms);
    for (const int fd : fds) {
        ::close(fd);
    }
    EXPECT_TRUE(eventually([&] { return get(port_, "/healthz").status == 200; }, 3s));
}

TEST_F(HttpFileTest, AClientThatNeverReadsDoesNotBlockTheLoop) {
    start();
    const Client c = Client::open(segment_);
    const int fd = connect_loopback(port_);
    ASSERT_GE(fd, 0);
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    std::string pipelined;
    for (int i = 0; i < 2000; ++i) {
        pipelined += "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    }
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    (void)::send(fd, pipelined.data(), pipelined.size(), MSG_NOSIGNAL);
    std::this_thread::sleep_for(300ms);
    EXPECT_LT(timed_edit(c, config_, 3, toml(3)), 1000ms);
    EXPECT_EQ(get(port_, "/healthz").status, 200);
    EXPECT_EQ(get(port_, "/metrics").status, 200);
    ::close(fd);
}

// Every entry readable from one snapshot, all of one generation, the revision coherent,
// and the health saying the writer stopped.
void expect_consistent(const std::string& segment, int keys) {
    const Client c = Client::open(segment);
    const Snapshot s = c.snapshot();
    EXPECT_EQ(s.revision(), c.revision());
    std::set<std::string> generations;
    int n = 0;
    EXPECT_TRUE(s.for_each(Namespace::config, "", [&](const EntryInfo& e) {
        ++n;
        EXPECT_EQ(s.get(e.key), std::string(e.value));
        EXPECT_LE(e.revision, s.revision());
        generations.insert(std::string(e.value.substr(0, e.value.find('-'))));
    }));
    EXPECT_EQ(n, keys);
    EXPECT_EQ(generations.size(), 1u) << "a snapshot mixes two versions of the file";
    const Health h = c.health();
    EXPECT_EQ(h.source_state, SourceState::stopped);
    EXPECT_FALSE(h.writer_alive);
}

TEST_F(HttpFileTest, SigtermDuringStartupAndUpdatesLeavesTheSegmentConsistent) {
    constexpr int kKeys = 5000;
    std::mt19937 rng(12345);
    write_file(config_, toml(0, kKeys));
    int generation = 0;
    for (int i = 0; i < 30; ++i) {
        port_ = free_port();
        const fs::path log = dir_ / ("agent-" + std::to_string(i) + ".log");
        agent_.spawn(args(port_), {"CONFIG_MODE=file", "LOG_LEVEL=debug"}, log);
        if (i % 5 == 0) {
            // During start-up: main runs (its first line is logged), the file is being
            // read and the segment written.
            ASSERT_TRUE(eventually(
                [&] { return read_text(log).find("starting in file mode") != std::string::npos; }));
        } else {
            ASSERT_TRUE(eventually([&] { return get(port_, "/readyz").status == 200; }));
            write_file(config_, toml(++generation, kKeys));
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 80000));
        }
        agent_.signal(SIGTERM);
        const Exit e = agent_.wait_exit(10s);
        ASSERT_TRUE(e.exited) << "iteration " << i;
        EXPECT_EQ(e.code, 0) << "iteration " << i << "\n" << read_text(log);
        if (fs::exists(detail::segment_path(segment_))) {
            expect_consistent(segment_, kKeys);
        } else {
            EXPECT_EQ(i, 0) << "no segment after iteration " << i;
        }
        if (HasFailure()) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Database mode.

class HttpDatabaseTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = temp_dir("httpdb");
        segment_ = unique_segment(std::string("http-") +
                                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
        unlink_segment(segment_);
    }
    void TearDown() override {
        agent_.kill();
        unlink_segment(segment_);
        if (HasFailure()) {
            std::cerr << "agent log:\n" << read_text(dir_ / "agent.log").substr(0, 20000);
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    void start(const std::string& url) {
        for (int attempt = 0; attempt < 5; ++attempt) {
            port_ = free_port();
            // A flag: Agent::start's environment already has YUXI_CONFIG_HTTP (port 0).
            agent_.start(url, segment_, dir_ / "agent.log",
                         {"--safety-poll", "1s", "--http", "127.0.0.1:" + std::to_string(port_)});
            if (eventually([&] { return get(port_, "/healthz").status == 200; }, 10s)) {
                return;
            }
            agent_.kill();
        }
        FAIL() << "the agent did not answer /healthz";
    }

    fs::path dir_;
    std::string segment_;
    std::uint16_t port_ = 0;
    Agent agent_;
};

TEST_F(HttpDatabaseTest, ReadyAfterTheSnapshotAndMeasuresPropagation) {
    const auto server = env_var("YUXI_TEST_DATABASE_URL");
    if (!server) {
        GTEST_SKIP() << "YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)";
    }
    TestDatabase db(*server);
    Pg pg(db.url());
    pg.exec("INSERT INTO system_configs (key, value, category) VALUES ('a', '1', 'basic')");
    start(db.url());
    ASSERT_TRUE(eventually([&] { return get(port_, "/readyz").status == 200; }));
    const Client c = Client::open(segment_);
    const Exposition first = scrape(port_);
    EXPECT_EQ(first.value("yuxi_config_source_up", {{"source", "postgres"}}), 1);
    EXPECT_EQ(first.value("yuxi_config_revision"), static_cast<double>(c.revision()));
    for (int i = 0; i < 5; ++i) {
        pg.exec("UPDATE system_configs SET value = '" + std::to_string(i + 2) +
                "' WHERE key = 'a'");
    }
    expect_converged(c, pg);
    const Exposition second = scrape(port_);
    EXPECT_EQ(second.value("yuxi_config_revision"), static_cast<double>(c.revision()));
    EXPECT_GE(*second.value("yuxi_config_propagation_delay_seconds_count"), 1);
    EXPECT_GE(*second.value("yuxi_config_updates_applied_total"), 1);
    EXPECT_GE(*second.value("yuxi_config_apply_duration_seconds_count"), 1);
    EXPECT_LT(*second.value("yuxi_config_propagation_delay_seconds_sum") /
                  *second.value("yuxi_config_propagation_delay_seconds_count"),
              1.0);
    EXPECT_EQ(second.value("yuxi_config_reconnects_total", {{"source", "postgres"}}), 0);
}

TEST_F(HttpDatabaseTest, ReadinessFollowsPostgres) {
    const std::string why = PrivateServer::unavailable();
    if (!why.empty()) {
        GTEST_SKIP() << "no private PostgreSQL: " << why;
    }
    PrivateServer server;
    ASSERT_TRUE(server.start());
    TestDatabase db(server.url());
    {
        Pg pg(db.url());
        pg.exec("INSERT INTO system_configs (key, value, category) VALUES ('a', '1', 'basic')");
    }
    // Not ready before the first snapshot: no PostgreSQL yet.
    ASSERT_TRUE(server.stop());
    start(db.url());
    const Response early = get(port_, "/readyz");
    EXPECT_EQ(early.status, 503);
    EXPECT_TRUE(early.body.starts_with("not ready: no snapshot published yet")) << early.body;
    ASSERT_TRUE(server.start_again());
    ASSERT_TRUE(eventually([&] { return get(port_, "/readyz").status == 200; }, 30s));

    // --safety-poll 1s: the stale limit is 2 s. Ready still just after the loss...
    const auto lost = std::chrono::steady_clock::now();
    ASSERT_TRUE(server.stop());
    ASSERT_TRUE(eventually(
        [&] {
            return scrape(port_).value("yuxi_config_source_up", {{"source", "postgres"}}) == 0;
        },
        10s));
    // ...then not ready, with the reason, once unfed past the limit.
    ASSERT_TRUE(eventually([&] { return get(port_, "/readyz").status == 503; }, 10s));
    // The limit counts from the last heartbeat that saw the source fed: up to 1 s early.
    EXPECT_GE(std::chrono::steady_clock::now() - lost, 1s);
    const Response down = get(port_, "/readyz");
    EXPECT_NE(down.body.find("no working connection to PostgreSQL"), std::string::npos)
        << down.body;
    const Exposition e = scrape(port_);
    EXPECT_EQ(e.value("yuxi_config_ready"), 0);
    EXPECT_EQ(e.value("yuxi_config_source_state", {{"state", "stale"}}), 1);
    EXPECT_EQ(get(port_, "/healthz").status, 200);

    ASSERT_TRUE(server.start_again());
    ASSERT_TRUE(eventually([&] { return get(port_, "/readyz").status == 200; }, 30s));
    const Exposition back = scrape(port_);
    EXPECT_EQ(back.value("yuxi_config_ready"), 1);
    EXPECT_EQ(back.value("yuxi_config_source_up", {{"source", "postgres"}}), 1);
    EXPECT_GE(*back.value("yuxi_config_reconnects_total", {{"source", "postgres"}}), 1);
    EXPECT_GE(*back.value("yuxi_config_errors_total", {{"kind", "connect"}}) +
                  *back.value("yuxi_config_errors_total", {{"kind", "connection_lost"}}),
              1);
}

}  // namespace
}  // namespace yuxi::config::test
