// The relay and its followers against a real PostgreSQL (a fresh database per test on
// YUXI_TEST_DATABASE_URL's server, or a private server for the outage tests) and a private
// redis-server per test: fan-out, hand-over under SIGKILL, catch-up through the stream and
// the L2 snapshot, Redis outages, replicas, bad input. The fleet fixture is in
// relay_test_support.hpp.
#include "relay_test_support.hpp"

namespace yuxi::config::test {
namespace {

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
        [&] { return agents_[1]->log_contains("refused a pubsub document (signature)"); }));

    // A corrupt snapshot and a foreign version: a new follower never loads them. (The
    // relay rewrites the snapshot only on its timer, every minute by default.)
    // Signed with the fleet's key (an insider's mistake, not a forgery): the checks behind
    // the signature still hold.
    (void)r.command({"SET", "yuxi:config:snapshot",
                     sealed(R"({"v":1,"revision":5,"created_ms":)" + std::to_string(unix_now_ms()) +
                            R"(,"count":1,"checksum":"0000000000000000",)"
                            R"("entries":[{"ns":"config","key":"evil","value":"1"}]})")});
    start_agent(2);
    Client fresh = client(2);
    expect_converged(fresh, *pg_);
    EXPECT_FALSE(fresh.get("evil").has_value());
    EXPECT_TRUE(
        eventually([&] { return agents_[2]->log_contains("yuxi:config:snapshot: the checksum"); }));
    (void)r.command({"SET", "yuxi:config:snapshot", sealed(R"({"v":2,"revision":5})")});
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
    // Each bad document twice: unsigned, as anyone with access to Redis could send it (the
    // signature check refuses it), and signed with the fleet's key, as only an insider
    // could (the decoders refuse it).
    std::uint64_t seq = 0;
    for (const std::string& doc : batches) {
        for (const std::string& text : {doc, sealed(doc)}) {
            (void)r.command({"PUBLISH", "yuxi:config:changes", text});
            // As the stream entry that would come next, under the right field and a wrong one.
            const std::string id = std::to_string(head + 1) + "-" + std::to_string(++seq);
            (void)r.command({"XADD", "yuxi:config:log", id, seq % 4 < 2 ? "d" : "x", text});
        }
        ++sent;
    }
    (void)r.command(
        {"XADD", "yuxi:config:log", std::to_string(head + 1) + "-999999", "d", "1", "d", "2"});
    (void)r.command({"HSET", "yuxi:config:agents", "\x1b]0;pwned\x07", "{\"v\":1}", "pod-junk",
                     "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]"
                     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"});
    // Hostile snapshots (signed, and one not), each followed by a signed wake-up that sends
    // the followers to it.
    std::size_t snapshots = 0;
    const auto fence_reply = r.command({"GET", "yuxi:config:relay:fence"});
    const std::string fence(fence_reply->str, fence_reply->len);
    for (const auto& f : fs::directory_iterator(corpus / "snapshot")) {
        const std::string name = f.path().filename().string();
        if (!name.starts_with("bad-") || ++snapshots > 8) {
            continue;
        }
        const std::string doc = read_text(f.path());
        (void)r.command({"SET", "yuxi:config:snapshot", snapshots == 1 ? doc : sealed(doc)});
        (void)r.command({"PUBLISH", "yuxi:config:changes",
                         sealed(R"({"v":1,"revision":)" + std::to_string(head + 500 + snapshots) +
                                R"(,"prev":)" + std::to_string(head + 499 + snapshots) +
                                R"(,"fence":)" + fence + "}")});
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
            const auto has = [&](std::string_view source, std::string_view reason,
                                 std::string_view count) {
                return m.find("yuxi_config_rejected_documents_total{source=\"" +
                              std::string(source) + "\",reason=\"" + std::string(reason) + "\"} " +
                              std::string(count)) != std::string::npos;
            };
            const std::string n = std::to_string(sent);
            return has("pubsub", "malformed", n) && has("pubsub", "signature", n) &&
                   has("snapshot", "malformed", "") && has("snapshot", "signature", "") &&
                   has("stream", "malformed", "") && has("stream", "signature", "");
        })) << http_get(http_ports_[i], "/metrics");
    }
    // `agents` shows the real agents and warns about the rest, on one line each.
    const std::string cmd = "DATABASE_URL='" + db_->url() +
                            "' REDIS_HOST=127.0.0.1 REDIS_PORT=" + std::to_string(redis_.port()) +
                            " YUXI_CONFIG_SIGNING_KEY=" + kTestSigningKey + " " +
                            YUXI_CONFIGCTL_BIN + " agents 2>&1";
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
                       "REDIS_PASSWORD=Wr0ngSecret", "YUXI_CONFIG_SAFETY_POLL=300ms",
                       std::string("YUXI_CONFIG_SIGNING_KEY=") + kTestSigningKey});
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
                            "' REDIS_HOST=127.0.0.1 REDIS_PORT=" + std::to_string(redis_.port()) +
                            " YUXI_CONFIG_SIGNING_KEY=" + kTestSigningKey;
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
