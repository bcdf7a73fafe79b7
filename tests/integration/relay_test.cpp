// The relay and its followers against a real PostgreSQL (a fresh database per test on
// YUXI_TEST_DATABASE_URL's server, or a private server for the outage tests) and a private
// redis-server per test: fan-out, hand-over under SIGKILL, catch-up through the stream and
// the L2 snapshot, Redis outages, replicas, bad input. (Over 600 lines: the scenarios share
// the fleet fixture below, and each reads best next to it.)
#include <regex>

#include "database_test_support.hpp"
#include "redis_test_support.hpp"

namespace yuxi::config::test {
namespace {

constexpr int kFleet = 5;

// The revisions an agent's log says it published, in log order.
std::vector<std::uint64_t> published_revisions(const std::string& log) {
    static const std::regex re("published revision ([0-9]+)");
    std::vector<std::uint64_t> out;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
        out.push_back(std::stoull((*it)[1].str()));
    }
    return out;
}

// GET `path` over HTTP/1.0 from 127.0.0.1:port; the whole response, or "" on failure.
std::string http_get(std::uint16_t port, const std::string& path) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const std::string req = "GET " + path + " HTTP/1.0\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
            char buf[4096];
            ssize_t n = 0;
            while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
                out.append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    ::close(fd);
    return out;
}

class RelayTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto url = env_var("YUXI_TEST_DATABASE_URL");
        if (!url) {
            GTEST_SKIP() << "YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)";
        }
        if (redis_server_bin().empty()) {
            GTEST_SKIP() << "no redis-server";
        }
        ASSERT_TRUE(redis_.start());
        dir_ = temp_dir("relay");
        db_ = std::make_unique<TestDatabase>(*url);
        pg_ = std::make_unique<Pg>(db_->url());
        pg_->exec(
            "INSERT INTO system_configs (key, value, category) VALUES "
            "('sentinel', '\"always here\"', 'basic')");
        tag_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    }

    void TearDown() override {
        for (auto& a : agents_) {
            a->kill();
        }
        for (int i = 0; i < static_cast<int>(agents_.size()); ++i) {
            if (HasFailure()) {
                // The end of the log: where a failure shows.
                const std::string log = read_text(log_path(i));
                std::cerr << "--- agent " << i << " log (last 12000 bytes):\n"
                          << log.substr(log.size() > 12000 ? log.size() - 12000 : 0);
            }
            unlink_segment(segment(i));
        }
        pg_.reset();
        db_.reset();
        redis_.kill();
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::string segment(int i) const { return unique_segment(tag_ + "-" + std::to_string(i)); }
    fs::path log_path(int i) const { return dir_ / ("agent" + std::to_string(i) + ".log"); }

    std::vector<std::string> agent_env(int i, std::uint16_t redis_port) const {
        return {"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(redis_port),
                "POD_NAME=pod" + std::to_string(i), "YUXI_CONFIG_RELAY_LEASE_TTL=1s",
                "YUXI_CONFIG_SAFETY_POLL=500ms"};
    }

    // Starts agent i (a new one, or again after a stop) with `extra` environment.
    Agent& start_agent(int i, const std::vector<std::string>& extra = {},
                       const std::string& url = {}) {
        while (static_cast<int>(agents_.size()) <= i) {
            agents_.push_back(std::make_unique<Agent>());
        }
        while (static_cast<int>(http_ports_.size()) <= i) {
            // Only where a test reads /metrics: a port picked here is free now, not
            // when the agent binds it. Distinct within the test at least.
            std::uint16_t port = 0;
            while (with_http_ && (port == 0 || std::find(http_ports_.begin(), http_ports_.end(),
                                                         port) != http_ports_.end())) {
                port = free_port();
            }
            http_ports_.push_back(port);
        }
        std::vector<std::string> env = agent_env(i, redis_.port());

        env.insert(env.end(), extra.begin(), extra.end());
        // A flag: the harness's own YUXI_CONFIG_HTTP comes first in the environment.
        agents_[i]->start(url.empty() ? db_->url() : url, segment(i), log_path(i),
                          {"--http", "127.0.0.1:" + std::to_string(http_ports_[i])}, env);
        return *agents_[i];
    }

    Client client(int i, std::chrono::milliseconds timeout = 20s) {
        auto c = open_when_ready(segment(i), timeout);
        if (!c) {
            throw std::runtime_error("no segment " + segment(i));
        }
        return std::move(*c);
    }

    // The agents whose log's last lease event is "taken".
    std::vector<int> leaders() const {
        std::vector<int> out;
        for (int i = 0; i < static_cast<int>(agents_.size()); ++i) {
            if (!agents_[i]->running()) {
                continue;
            }
            const std::string log = agents_[i]->log();
            const auto taken = log.rfind("relay lease taken");
            const auto lost = log.rfind("relay lease lost");
            if (taken != std::string::npos && (lost == std::string::npos || lost < taken)) {
                out.push_back(i);
            }
        }
        return out;
    }

    // The one agent that holds the lease, or -1 (none, or a hand-over in progress).
    int leader() const {
        const auto l = leaders();
        return l.size() == 1 ? l[0] : -1;
    }

    // Agent 0 as the relay, then agent 1 as its follower, in step with the database.
    Client start_relay_and_follower() {
        start_agent(0);
        (void)client(0);
        EXPECT_TRUE(eventually([&] { return leader() == 0; }));
        start_agent(1);
        Client follower = client(1);
        expect_converged(follower, *pg_);
        return follower;
    }

    int agent_connections() {
        return std::stoi(pg_->scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'yuxi-config-agent' "
            "AND datname = current_database()"));
    }

    // Role → pod, from the agents hash (a role held by two pods keeps one of them, and
    // the size tells).
    std::map<std::string, std::string> roles() const {
        std::map<std::string, std::string> out;
        auto r = redis().command({"HGETALL", "yuxi:config:agents"});
        std::size_t seen = 0;
        for (std::size_t k = 0; k + 1 < r->elements; k += 2, ++seen) {
            const std::string pod(r->element[k]->str, r->element[k]->len);
            const std::string v(r->element[k + 1]->str, r->element[k + 1]->len);
            for (const char* role : {"relay", "follower", "direct"}) {
                if (v.find("\"role\":\"" + std::string(role) + "\"") != std::string::npos) {
                    out[role] = pod;
                }
            }
        }
        if (out.size() != seen) {
            out.clear();  // two pods in one role
        }
        return out;
    }

    detail::RedisConnection redis() const { return detail::RedisConnection(redis_.endpoint()); }

    void write(const std::string& key, const std::string& json) {
        pg_->exec(
            "INSERT INTO system_configs (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO "
            "UPDATE SET value = EXCLUDED.value",
            {key, json});
    }

    PrivateRedis redis_;
    fs::path dir_;
    std::string tag_;
    std::unique_ptr<TestDatabase> db_;
    std::unique_ptr<Pg> pg_;
    std::vector<std::unique_ptr<Agent>> agents_;
    std::vector<std::uint16_t> http_ports_;  // 0: no HTTP server
    bool with_http_ = false;
};

TEST_F(RelayTest, WriteReachesEveryAgentWhileOneHoldsTheDatabase) {
    with_http_ = true;
    for (int i = 0; i < kFleet; ++i) {
        start_agent(i);
    }
    std::vector<Client> clients;
    for (int i = 0; i < kFleet; ++i) {
        clients.push_back(client(i));
    }
    write("fan_out", R"({"to": "everyone"})");
    for (int i = 0; i < kFleet; ++i) {
        EXPECT_TRUE(
            until_published(clients[i], [&] { return clients[i].get("fan_out").has_value(); }))
            << "agent " << i;
        expect_converged(clients[i], *pg_);
    }
    ASSERT_NE(leader(), -1);
    // Followers that read PostgreSQL at start (no L2 snapshot yet) let it go.
    EXPECT_TRUE(eventually([&] { return agent_connections() <= 2; }, 10s))
        << agent_connections() << " agent connections";
    // Steady state: still at most 2 after more writes.
    for (int n = 0; n < 20; ++n) {
        write("fan_out", std::to_string(n));
    }
    for (int i = 0; i < kFleet; ++i) {
        expect_converged(clients[i], *pg_);
    }
    EXPECT_LE(agent_connections(), 2);

    // Every agent reports its applied revision; exactly one is the relay.
    const std::uint64_t head = db_revision(*pg_);
    EXPECT_TRUE(eventually(
        [&] {
            auto r = redis().command({"HGETALL", "yuxi:config:agents"});
            if (r->elements != 2 * kFleet) {
                return false;
            }
            int relays = 0;
            for (std::size_t k = 1; k < r->elements; k += 2) {
                const std::string v(r->element[k]->str, r->element[k]->len);
                if (v.find("\"revision\":" + std::to_string(head)) == std::string::npos) {
                    return false;
                }
                relays += v.find("\"role\":\"relay\"") != std::string::npos ? 1 : 0;
            }
            return relays == 1;
        },
        5s));
    // The relay's metrics: exactly one leader, Redis up everywhere.
    int leaders_reported = 0;
    for (int i = 0; i < kFleet; ++i) {
        const std::string m = http_get(http_ports_[i], "/metrics");
        EXPECT_NE(m.find("\nyuxi_config_source_up{source=\"redis\"} 1\n"), std::string::npos) << m;
        leaders_reported += m.find("\nyuxi_config_relay_leader 1\n") != std::string::npos ? 1 : 0;
    }
    EXPECT_EQ(leaders_reported, 1);
    // A clean stop takes the agent off the list.
    agents_[0]->stop();
    EXPECT_EQ(redis().command_integer({"HEXISTS", "yuxi:config:agents", "pod0"}), 0);
}

TEST_F(RelayTest, RelayKilledDuringWriteStormHandsOverWithoutLossOrRepeat) {
    for (int i = 0; i < kFleet; ++i) {
        start_agent(i);
    }
    for (int i = 0; i < kFleet; ++i) {
        (void)client(i);
    }
    ASSERT_TRUE(eventually([&] { return leader() != -1; }));
    const int first = leader();
    {
        WriteStorm storm(db_->url(), 4, 23);
        std::this_thread::sleep_for(400ms);
        agents_[first]->kill();
        std::this_thread::sleep_for(1500ms);
        storm.finish();
        EXPECT_GT(storm.commits(), 100u);
    }
    ASSERT_TRUE(eventually([&] { return leader() != -1 && leader() != first; }, 10s));
    for (int i = 0; i < kFleet; ++i) {
        if (i == first) {
            continue;
        }
        Client c = client(i);
        expect_converged(c, *pg_);
        // Each batch was applied once, on top of the previous one: the revisions an agent
        // published only go up.
        const auto revisions = published_revisions(agents_[i]->log());
        EXPECT_TRUE(std::is_sorted(revisions.begin(), revisions.end(),
                                   [](auto a, auto b) { return a <= b; }) &&
                    std::adjacent_find(revisions.begin(), revisions.end()) == revisions.end())
            << "agent " << i << " published a revision twice or out of order";
    }
}

TEST_F(RelayTest, FollowerBehindTheStreamCatchesUpThroughTheSnapshot) {
    const std::vector<std::string> small = {"YUXI_CONFIG_STREAM_LENGTH=10",
                                            "YUXI_CONFIG_SNAPSHOT_TTL=3s"};
    start_agent(0, small);
    (void)client(0);
    ASSERT_TRUE(eventually([&] { return leader() == 0; }));
    start_agent(1, small);
    Client follower = client(1);
    expect_converged(follower, *pg_);

    // A pod gone for long (its field never refreshed) is pruned by the relay's timer.
    (void)redis().command({"HSET", "yuxi:config:agents", "ghost",
                           R"({"v":1,"revision":1,"heartbeat_ms":1000,"role":"follower"})"});

    agents_[1]->signal(SIGSTOP);
    for (int n = 0; n < 400; ++n) {
        write("behind_" + std::to_string(n % 13), std::to_string(n));
    }
    EXPECT_LT(redis().command_integer({"XLEN", "yuxi:config:log"}), 300);
    std::this_thread::sleep_for(1500ms);  // the relay rewrites the snapshot every second
    // The messages waiting in its subscription go too: it must notice the gap itself.
    (void)redis().command({"CLIENT", "KILL", "TYPE", "pubsub"});
    agents_[1]->signal(SIGCONT);
    expect_converged(follower, *pg_);
    EXPECT_TRUE(eventually([&] {
        const std::string log = agents_[1]->log();
        return log.find("follower loaded the L2 snapshot") != std::string::npos;
    })) << "the follower did not use the snapshot";
    EXPECT_TRUE(eventually([&] {
        return redis().command_integer({"HEXISTS", "yuxi:config:agents", "ghost"}) == 0;
    }));
}

TEST_F(RelayTest, RedisOutageKeepsTheDirectPathAndFanOutResumes) {
    Client follower = start_relay_and_follower();
    Client relay = client(0);

    redis_.kill();
    write("during_outage", "1");
    // The relay's LISTEN keeps its segment current; the follower polls PostgreSQL.
    EXPECT_TRUE(until_published(relay, [&] { return relay.get("during_outage").has_value(); }));
    EXPECT_TRUE(
        until_published(follower, [&] { return follower.get("during_outage").has_value(); }));

    ASSERT_TRUE(redis_.restart());
    // Fan-out resumes without a restart: the old relay finds its lease gone with the data,
    // one of the two takes it again, and the other follows Redis with PostgreSQL let go.
    ASSERT_TRUE(eventually(
        [&] {
            return redis().command_integer({"EXISTS", "yuxi:config:relay"}) == 1;
        },
        10s));
    // Settled: the hash (emptied by the restart) shows one relay and one follower, which
    // the old relay reports only once its renewal has told it the lease is gone.
    int other = -1;
    ASSERT_TRUE(eventually(
        [&] {
            const auto r = roles();
            if (r.size() != 2 || r.count("relay") != 1 || r.count("follower") != 1) {
                return false;
            }
            // The hash lags a role change by up to a heartbeat: the logs must agree.
            other = std::stoi(r.at("follower").substr(3));  // "podN"
            return leader() == std::stoi(r.at("relay").substr(3));
        },
        10s));
    EXPECT_TRUE(eventually([&] { return agent_connections() <= 1; }, 10s))
        << agent_connections() << " connections: the follower still reads PostgreSQL";
    const std::size_t before = agents_[other]->log().size();
    write("after_outage", "2");
    Client& c = other == 0 ? relay : follower;
    EXPECT_TRUE(until_published(c, [&] { return c.get("after_outage").has_value(); }));
    expect_converged(follower, *pg_);
    expect_converged(relay, *pg_);
    // The agent logs a batch just after publishing it: the segment can be ahead of the log.
    EXPECT_TRUE(eventually([&] {
        return agents_[other]->log().substr(before).find("(relay ") != std::string::npos;
    })) << "agent "
        << other << " (the follower) did not get the batch through Redis; its log "
        << "after the write:\n"
        << agents_[other]->log().substr(before);
}

// A Redis that hangs (no answers, connections open) is noticed by the deadline: the
// follower falls back to PostgreSQL, and resumes fan-out when Redis answers again.
TEST_F(RelayTest, HungRedisIsNoticedAndFollowersFallBack) {
    Client follower = start_relay_and_follower();

    redis_.signal(SIGSTOP);
    write("while_hung", "1");
    EXPECT_TRUE(until_published(
        follower, [&] { return follower.get("while_hung").has_value(); }, 15s));
    EXPECT_TRUE(
        eventually([&] { return agents_[1]->log_contains("no answer within the deadline"); }));
    redis_.signal(SIGCONT);
    ASSERT_TRUE(eventually([&] { return leader() != -1; }, 15s));
    EXPECT_TRUE(eventually([&] { return agent_connections() <= 1; }, 15s));
    write("after_hang", "2");
    expect_converged(follower, *pg_);
}

TEST_F(RelayTest, FollowersReadThroughAReplica) {
    PrivateRedis replica;
    ASSERT_TRUE(replica.start(0, {"--replicaof", "127.0.0.1", std::to_string(redis_.port())}));
    // Until its first sync the replica passes nothing on; the followers' safety poll would
    // catch up anyway, but the test is about the pub/sub path.
    (void)redis().command({"CONFIG", "SET", "repl-diskless-sync-delay", "0"});
    ASSERT_TRUE(eventually(
        [&] {
            detail::RedisConnection c(replica.endpoint());
            auto info = c.command({"INFO", "replication"});
            return std::string(info->str, info->len).find("master_link_status:up") !=
                   std::string::npos;
        },
        15s));
    const std::vector<std::string> via_replica = {
        "REDIS_REPLICA_HOST=127.0.0.1", "REDIS_REPLICA_PORT=" + std::to_string(replica.port())};
    for (int i = 0; i < 3; ++i) {
        start_agent(i, via_replica);
    }
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(client(i));
    }
    for (int n = 0; n < 10; ++n) {
        write("replicated", std::to_string(n));
    }
    for (int i = 0; i < 3; ++i) {
        expect_converged(clients[i], *pg_);
    }
    const int relay = leader();
    ASSERT_NE(relay, -1);
    for (int i = 0; i < 3; ++i) {
        if (i != relay) {
            EXPECT_TRUE(agents_[i]->log_contains("followers read the replica"));
            EXPECT_TRUE(eventually([&] { return agents_[i]->log_contains("(relay "); }))
                << "agent " << i;
        }
    }
}

TEST_F(RelayTest, GarbageOnTheChannelAndBadSnapshotsAreIgnored) {
    Client follower = start_relay_and_follower();

    auto r = redis();
    (void)r.command({"PUBLISH", "yuxi:config:changes", "not json at all"});
    (void)r.command({"PUBLISH", "yuxi:config:changes", R"({"v":99,"revision":1000,"prev":999})"});
    write("after_garbage", "true");
    EXPECT_TRUE(
        until_published(follower, [&] { return follower.get("after_garbage").has_value(); }));
    EXPECT_TRUE(eventually(
        [&] { return agents_[1]->log_contains("refused a pubsub document (malformed)"); }));

    // A corrupt snapshot and a foreign version: a new follower never loads them. (The
    // relay rewrites the snapshot only on its timer, every minute by default.)
    (void)r.command({"SET", "yuxi:config:snapshot",
                     R"({"v":1,"revision":5,"count":1,"checksum":"0000000000000000",)"
                     R"("entries":[{"ns":"config","key":"evil","value":"1"}]})"});
    start_agent(2);
    Client fresh = client(2);
    expect_converged(fresh, *pg_);
    EXPECT_FALSE(fresh.get("evil").has_value());
    EXPECT_TRUE(
        eventually([&] { return agents_[2]->log_contains("yuxi:config:snapshot: the checksum"); }));
    (void)r.command({"SET", "yuxi:config:snapshot", R"({"v":2,"revision":5})"});
    agents_[2]->stop();
    unlink_segment(segment(2));
    start_agent(2);
    Client again = client(2);
    expect_converged(again, *pg_);
    EXPECT_TRUE(
        eventually([&] { return agents_[2]->log_contains("yuxi:config:snapshot: version 2"); }));
}

// Every bad document of the committed hostile-input table (tests/fuzz/corpus/), sent as
// anyone with access to the Redis could: on the channel, as stream entries, as the L2
// snapshot and as agents' reports. No agent dies or changes what it serves; each counts
// what it refused; the next real write reaches every segment.
TEST_F(RelayTest, HostileDocumentsNeverStopTheFleet) {
    with_http_ = true;
    for (int i = 0; i < 3; ++i) {
        start_agent(i);
    }
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(client(i));
    }
    ASSERT_TRUE(eventually([&] { return leader() != -1; }));
    write("before", "1");
    for (auto& c : clients) {
        expect_converged(c, *pg_);
    }
    const std::uint64_t head = db_revision(*pg_);
    auto r = redis();
    std::size_t sent = 0;
    const fs::path corpus = YUXI_FUZZ_CORPUS;
    std::vector<std::string> batches;
    for (const auto& f : fs::directory_iterator(corpus / "batch")) {
        if (f.path().filename().string().starts_with("bad-")) {
            batches.push_back(read_text(f.path()));
        }
    }
    ASSERT_GT(batches.size(), 100u);
    std::uint64_t seq = 0;
    for (const std::string& doc : batches) {
        (void)r.command({"PUBLISH", "yuxi:config:changes", doc});
        // As the stream entry that would come next, under the right field and a wrong one.
        const std::string id = std::to_string(head + 1) + "-" + std::to_string(++seq);
        (void)r.command({"XADD", "yuxi:config:log", id, seq % 2 == 0 ? "d" : "x", doc});
        ++sent;
    }
    (void)r.command(
        {"XADD", "yuxi:config:log", std::to_string(head + 1) + "-999999", "d", "1", "d", "2"});
    (void)r.command({"HSET", "yuxi:config:agents", "\x1b]0;pwned\x07", "{\"v\":1}", "pod-junk",
                     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]"
                     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"});
    // Hostile snapshots, each followed by a wake-up that sends the followers to it.
    std::size_t snapshots = 0;
    for (const auto& f : fs::directory_iterator(corpus / "snapshot")) {
        const std::string name = f.path().filename().string();
        if (!name.starts_with("bad-") || ++snapshots > 8) {
            continue;
        }
        (void)r.command({"SET", "yuxi:config:snapshot", read_text(f.path())});
        (void)r.command({"PUBLISH", "yuxi:config:changes",
                         R"({"v":1,"revision":)" + std::to_string(head + 500 + snapshots) +
                             R"(,"prev":)" + std::to_string(head + 499 + snapshots) + "}"});
        std::this_thread::sleep_for(100ms);
    }
    // Every agent alive, serving what it served, and counting what it refused.
    for (int i = 0; i < 3; ++i) {
        int status = 0;
        EXPECT_EQ(::waitpid(agents_[i]->pid(), &status, WNOHANG), 0) << "agent " << i << " died";
        expect_converged(clients[i], *pg_);
        EXPECT_EQ(clients[i].revision(), head) << "agent " << i;
    }
    for (int i = 0; i < 3; ++i) {
        if (i == leader()) {
            continue;  // the relay does not follow the channel
        }
        EXPECT_TRUE(eventually([&] {
            const std::string m = http_get(http_ports_[i], "/metrics");
            return m.find(
                       "yuxi_config_rejected_documents_total{source=\"pubsub\",reason=\"mal"
                       "formed\"} " +
                       std::to_string(sent)) != std::string::npos &&
                   m.find(
                       "yuxi_config_rejected_documents_total{source=\"snapshot\",reason=\"mal"
                       "formed\"}") != std::string::npos &&
                   m.find(
                       "yuxi_config_rejected_documents_total{source=\"stream\",reason=\"mal"
                       "formed\"}") != std::string::npos;
        })) << http_get(http_ports_[i], "/metrics");
    }
    // `agents` shows the real agents and warns about the rest, on one line each.
    const std::string cmd = "DATABASE_URL='" + db_->url() +
                            "' REDIS_HOST=127.0.0.1 REDIS_PORT=" + std::to_string(redis_.port()) +
                            " " + YUXI_CONFIGCTL_BIN + " agents 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[4096];
    std::string out;
    while (std::fgets(buf, sizeof buf, p) != nullptr) {
        out += buf;
    }
    const int status = ::pclose(p);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
    EXPECT_EQ(out.find('\x1b'), std::string::npos) << out;
    EXPECT_NE(out.find("pod-junk"), std::string::npos) << out;
    EXPECT_NE(out.find("pod0"), std::string::npos) << out;
    // The next real write reaches everyone.
    write("after", R"({"still": "working"})");
    for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(
            until_published(clients[i], [&] { return clients[i].get("after").has_value(); }))
            << "agent " << i;
        expect_converged(clients[i], *pg_);
    }
}

TEST_F(RelayTest, WrongRedisPasswordIsReportedAndPostgresStillServes) {
    PrivateRedis locked;
    ASSERT_TRUE(locked.start(0, {"--requirepass", "right-pass"}));
    agents_.push_back(std::make_unique<Agent>());
    agents_[0]->start(db_->url(), segment(0), log_path(0), {},
                      {"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(locked.port()),
                       "REDIS_PASSWORD=Wr0ngSecret", "YUXI_CONFIG_SAFETY_POLL=300ms"});
    Client c = client(0);
    write("without_redis", "1");
    EXPECT_TRUE(until_published(c, [&] { return c.get("without_redis").has_value(); }));
    EXPECT_TRUE(eventually([&] { return agents_[0]->log_contains("refused AUTH"); }));
    EXPECT_FALSE(agents_[0]->log_contains("Wr0ngSecret"));
}

TEST_F(RelayTest, RelayTrimsThePostgresLogToItsRetention) {
    const std::vector<std::string> keep = {"YUXI_CONFIG_LOG_KEEP=5"};
    start_agent(0, keep);
    (void)client(0);
    ASSERT_TRUE(eventually([&] { return leader() == 0; }));
    start_agent(1, keep);
    Client follower = client(1);
    for (int n = 0; n < 40; ++n) {
        write("trimmed_" + std::to_string(n % 7), std::to_string(n));
    }
    expect_converged(follower, *pg_);
    EXPECT_TRUE(eventually(
        [&] { return pg_->number("SELECT count(*) FROM yuxi_config_changes") <= 5; }, 10s));
    const std::uint64_t through = pg_->number("SELECT trimmed_through FROM yuxi_config_log_state");
    EXPECT_GE(through, db_revision(*pg_) - 5);
    // A new agent after the trim starts from a snapshot, and the fleet keeps converging.
    start_agent(2, keep);
    Client late = client(2);
    write("after_trim", "1");
    expect_converged(late, *pg_);
    expect_converged(follower, *pg_);
}

// The L2 snapshot: an agent that starts while PostgreSQL is down serves it, degraded, and
// converges when PostgreSQL returns. Needs a PostgreSQL of its own to stop.
TEST_F(RelayTest, BootsFromTheL2SnapshotWhilePostgresIsDown) {
    if (const std::string why = PrivateServer::unavailable(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    PrivateServer server;
    ASSERT_TRUE(server.start());
    auto db = std::make_unique<TestDatabase>(server.url());
    {
        Pg pg(db->url());
        pg.exec("INSERT INTO system_configs (key, value) VALUES ('before', '\"l2\"')");
    }
    const std::vector<std::string> fast = {"YUXI_CONFIG_SNAPSHOT_TTL=3s"};
    start_agent(0, fast, db->url());
    Client first = client(0);
    ASSERT_TRUE(until_published(first, [&] { return first.get("before").has_value(); }));
    ASSERT_TRUE(eventually([&] {
        return redis().command_integer({"EXISTS", "yuxi:config:snapshot"}) == 1;
    }));
    agents_[0]->stop();
    ASSERT_TRUE(server.stop("fast"));

    start_agent(1, fast, db->url());
    Client booted = client(1, 15s);
    EXPECT_EQ(booted.get_string("before").value_or(""), "l2");
    EXPECT_TRUE(
        eventually([&] { return booted.health().source_state == SourceState::degraded; }, 10s))
        << to_string(booted.health().source_state);

    ASSERT_TRUE(server.start_again());
    {
        Pg pg(db->url());
        pg.exec("INSERT INTO system_configs (key, value) VALUES ('after', '1')");
        expect_converged(booted, pg);
    }
    EXPECT_TRUE(eventually([&] { return booted.health().source_state == SourceState::ok; }, 10s));
    agents_[1]->kill();
    db.reset();
}

// `yuxi-configctl set --wait-all` against real agents: when it returns, every segment
// already holds the write.
TEST_F(RelayTest, SetWaitAllReturnsOnceEveryAgentHasTheWrite) {
    for (int i = 0; i < 3; ++i) {
        start_agent(i);
    }
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(client(i));
        expect_converged(clients.back(), *pg_);
    }
    ASSERT_TRUE(eventually([&] {
        return redis().command_integer({"HLEN", "yuxi:config:agents"}) == 3;
    }));
    const std::string env = "DATABASE_URL='" + db_->url() +
                            "' REDIS_HOST=127.0.0.1 REDIS_PORT=" + std::to_string(redis_.port());
    for (int n = 0; n < 5; ++n) {
        const std::string value = "\"round " + std::to_string(n) + "\"";
        const std::string cmd = env + " " + YUXI_CONFIGCTL_BIN + " set waited '" + value +
                                "' --wait-all --timeout 10 2>&1";
        FILE* p = ::popen(cmd.c_str(), "r");
        ASSERT_NE(p, nullptr);
        char buf[4096];
        std::string out;
        while (std::fgets(buf, sizeof buf, p) != nullptr) {
            out += buf;
        }
        const int status = ::pclose(p);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
        for (int i = 0; i < 3; ++i) {
            EXPECT_EQ(clients[i].get("waited").value_or(""), value) << "agent " << i << ": " << out;
        }
    }
}

}  // namespace
}  // namespace yuxi::config::test
