// Trusted changes: the fleet's Redis documents are signed (core/signing.hpp), so that
// whoever can write to Redis cannot change what pods read. Forged and replayed batches,
// stream entries, snapshots and reports against a real fleet; a key rotated under a
// write storm; the refusal to start without a key; Redis ACL users that confine the fleet,
// the locks and the app. The fleet fixture is in relay_test_support.hpp.
#include <fstream>
#include <nlohmann/json.hpp>

#include "relay_test_support.hpp"

namespace yuxi::config::test {
namespace {

std::uint64_t fence_of(detail::RedisConnection& r) {
    const auto reply = r.command({"GET", "yuxi:config:relay:fence"});
    return reply->str != nullptr ? std::stoull(std::string(reply->str, reply->len)) : 0;
}

std::string batch(std::uint64_t revision, std::uint64_t prev, std::uint64_t fence,
                  const std::string& key, const std::string& value_json) {
    return R"({"v":1,"revision":)" + std::to_string(revision) + R"(,"prev":)" +
           std::to_string(prev) + R"(,"commit_ns":0,"fence":)" + std::to_string(fence) +
           R"(,"entries":[{"ns":"config","key":")" + key + R"(","op":"U","value":)" +
           nlohmann::json(value_json).dump() + "}]}";
}

// Every segment holds what PostgreSQL holds, and none ever showed `forged`.
void expect_untouched(std::vector<Client>& clients, Pg& pg, std::string_view forged) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
        expect_converged(clients[i], pg);
        const auto v = clients[i].get("embed_model");
        EXPECT_FALSE(v && v->find(forged) != std::string::npos) << "agent " << i << ": " << *v;
    }
}

// The forgery of the issue that asked for signing, and its relatives: none is ever visible
// in a segment, each is counted, and the fleet converges on the next real write.
TEST_F(RelayTest, ForgedAndReplayedDocumentsNeverReachASegment) {
    with_http_ = true;
    for (int i = 0; i < 3; ++i) {
        start_agent(i);
    }
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(client(i));
    }
    ASSERT_TRUE(eventually([&] { return leader() != -1; }));
    // Capture an authentic batch and snapshot, to replay them later.
    auto r = redis();
    write("embed_model", R"("siliconflow/BAAI/bge-m3")");
    for (auto& c : clients) {
        expect_converged(c, *pg_);
    }
    const auto old_stream = r.command({"XREVRANGE", "yuxi:config:log", "+", "-", "COUNT", "1"});
    ASSERT_EQ(old_stream->elements, 1u);
    const std::string authentic(old_stream->element[0]->element[1]->element[1]->str,
                                old_stream->element[0]->element[1]->element[1]->len);
    write("later", "1");
    write("later", "2");
    for (auto& c : clients) {
        expect_converged(c, *pg_);
    }
    const std::uint64_t head = db_revision(*pg_);
    const std::uint64_t fence = fence_of(r);
    const std::string forged = batch(head + 1, head, fence, "embed_model", R"("attacker/exfil")");

    // 1. On the channel: unsigned, and signed with a key the fleet does not know.
    (void)r.command({"PUBLISH", "yuxi:config:changes", forged});
    (void)r.command({"PUBLISH", "yuxi:config:changes", sealed(forged, kOtherSigningKey)});
    // 2. As the next stream entry.
    (void)r.command({"XADD", "yuxi:config:log", std::to_string(head + 1) + "-0", "d", forged});
    // 3. A replay of an authentic batch from the past.
    (void)r.command({"PUBLISH", "yuxi:config:changes", authentic});
    // 4. A forged report claiming a revision nobody has.
    (void)r.command({"HSET", "yuxi:config:agents", "pod-forged",
                     R"({"v":1,"revision":999999,"heartbeat_ms":)" + std::to_string(unix_now_ms()) +
                         R"(,"role":"follower","state":"ok"})"});
    std::this_thread::sleep_for(1500ms);  // three safety polls: the stream is read again
    expect_untouched(clients, *pg_, "attacker");
    for (auto& c : clients) {
        EXPECT_EQ(c.revision(), head);
    }

    // 5. A forged L2 snapshot, for a new follower that boots from it.
    const std::string snapshot =
        R"({"v":1,"revision":)" + std::to_string(head + 100) + R"(,"created_ms":)" +
        std::to_string(unix_now_ms()) +
        R"(,"count":1,"checksum":"0","entries":[{"ns":"config","key":"embed_model","value":"\"attacker/snap\""}]})";
    (void)r.command({"SET", "yuxi:config:snapshot", snapshot});
    start_agent(3);
    clients.push_back(client(3));
    expect_untouched(clients, *pg_, "attacker");
    EXPECT_TRUE(eventually([&] { return agents_[3]->log_contains("snapshot: not signed"); }));

    // Every follower counted the forgeries as signature failures.
    for (int i = 0; i < 3; ++i) {
        if (i == leader()) {
            continue;
        }
        const std::string m = http_get(http_ports_[i], "/metrics");
        EXPECT_NE(m.find("yuxi_config_rejected_documents_total{source=\"pubsub\",reason="
                         "\"signature\"} 2"),
                  std::string::npos)
            << m;
        EXPECT_NE(m.find("yuxi_config_insecure 0"), std::string::npos);
    }
    // The forged report is not an agent.
    const std::string env = "DATABASE_URL='" + db_->url() +
                            "' REDIS_HOST=127.0.0.1 REDIS_PORT=" + std::to_string(redis_.port()) +
                            " YUXI_CONFIG_SIGNING_KEY=" + kTestSigningKey;
    FILE* p = ::popen((env + " " + YUXI_CONFIGCTL_BIN + " agents --json 2>/dev/null").c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[8192];
    std::string out;
    while (std::fgets(buf, sizeof buf, p) != nullptr) {
        out += buf;
    }
    ::pclose(p);
    EXPECT_EQ(out.find("pod-forged"), std::string::npos) << out;
    EXPECT_NE(out.find("pod0"), std::string::npos) << out;

    // The fleet converges on the next real write.
    write("embed_model", R"("siliconflow/BAAI/bge-m3-v2")");
    for (auto& c : clients) {
        EXPECT_TRUE(until_published(
            c, [&] { return c.get("embed_model").value_or("").find("v2") != std::string::npos; }));
    }
    expect_untouched(clients, *pg_, "attacker");
}

// A follower ahead of an authentic but old L2 snapshot never loads it, however it is
// pushed there: its revision never goes back.
TEST_F(RelayTest, AnOldAuthenticSnapshotNeverMovesAFollowerBack) {
    Client follower = start_relay_and_follower();
    auto r = redis();
    write("k", "1");
    expect_converged(follower, *pg_);
    // The relay rewrites the snapshot on a timer: take an authentic one now.
    ASSERT_TRUE(eventually([&] {
        const auto s = r.command({"GET", "yuxi:config:snapshot"});
        return s->type == REDIS_REPLY_STRING;
    }));
    const auto old = r.command({"GET", "yuxi:config:snapshot"});
    const std::string old_snapshot(old->str, old->len);
    for (int n = 2; n < 6; ++n) {
        write("k", std::to_string(n));
    }
    expect_converged(follower, *pg_);
    const std::uint64_t reached = follower.revision();
    // Freeze the follower, write more, take the stream away, put the old snapshot back, and
    // cut its subscription: on return it must sync, and the stream has nothing for it.
    agents_[1]->signal(SIGSTOP);
    write("k", "6");
    write("k", "7");
    (void)r.command({"DEL", "yuxi:config:log"});
    (void)r.command({"SET", "yuxi:config:snapshot", old_snapshot});
    (void)r.command({"CLIENT", "KILL", "TYPE", "pubsub"});
    agents_[1]->signal(SIGCONT);
    std::uint64_t lowest = reached;
    EXPECT_TRUE(eventually([&] {
        lowest = std::min(lowest, follower.revision());
        return follower.revision() == db_revision(*pg_);
    }));
    EXPECT_GE(lowest, reached);
    expect_converged(follower, *pg_);
    EXPECT_EQ(follower.get("k").value_or(""), "7");
}

// Rotation as docs/security.md tells it, under a write storm: add the new key as the
// previous one everywhere, then swap, then drop the old one. No update is lost, none is
// applied twice, and no agent refuses a document on the way.
TEST_F(RelayTest, KeyRotationUnderAWriteStormLosesNothing) {
    with_http_ = true;
    const fs::path current = dir_ / "key";
    const fs::path previous = dir_ / "key.previous";
    const auto put = [](const fs::path& p, std::string_view text) {
        const fs::path tmp = p.string() + ".tmp";
        std::ofstream(tmp) << text << '\n';
        fs::rename(tmp, p);  // as a Secret volume swaps its files
    };
    put(current, kTestSigningKey);
    const std::vector<std::string> files = {
        "YUXI_CONFIG_SIGNING_KEY_FILE=" + current.string(),
        "YUXI_CONFIG_SIGNING_KEY_PREVIOUS_FILE=" + previous.string()};
    for (int i = 0; i < 3; ++i) {
        start_agent(i, files);
    }
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(client(i));
    }
    ASSERT_TRUE(eventually([&] { return leader() != -1; }));
    {
        WriteStorm storm(db_->url(), 2, 20);
        std::this_thread::sleep_for(500ms);
        put(previous, kOtherSigningKey);  // 1. accept the new key everywhere
        std::this_thread::sleep_for(2500ms);
        put(current, kOtherSigningKey);  // 2. sign with it, still accept the old one
        put(previous, kTestSigningKey);
        std::this_thread::sleep_for(2500ms);
        fs::remove(previous);  // 3. the old key is gone
        std::this_thread::sleep_for(2500ms);
        storm.finish();
    }
    // Retired keys are accepted for a grace (signing_keys.hpp) before they are refused.
    std::this_thread::sleep_for(std::chrono::seconds(12));
    for (int i = 0; i < 3; ++i) {
        expect_converged(clients[i], *pg_);
        const std::vector<std::uint64_t> revs = published_revisions(agents_[i]->log());
        EXPECT_TRUE(std::is_sorted(revs.begin(), revs.end()) &&
                    std::adjacent_find(revs.begin(), revs.end()) == revs.end())
            << "agent " << i << " published a revision twice or out of order";
        EXPECT_TRUE(eventually([&] {
            return agents_[i]->log_contains("signing with key " +
                                            SigningKey::from_base64(kOtherSigningKey, "k")->id());
        }));
        const std::string m = http_get(http_ports_[i], "/metrics");
        EXPECT_EQ(m.find("reason=\"signature\""), std::string::npos) << "agent " << i << ":\n" << m;
    }
    // The old key is no longer accepted.
    auto r = redis();
    const std::uint64_t head = db_revision(*pg_);
    (void)r.command({"PUBLISH", "yuxi:config:changes",
                     sealed(batch(head + 1, head, fence_of(r), "embed_model", "\"old key\""))});
    std::this_thread::sleep_for(300ms);
    for (auto& c : clients) {
        EXPECT_EQ(c.revision(), head);
    }
}

// Secure by default: without a key an agent of a fleet refuses to start, saying how to
// give one; --insecure-redis runs, and says so in its log and its metrics.
TEST_F(RelayTest, WithoutAKeyTheAgentRefusesAndInsecureRedisSaysSo) {
    agents_.push_back(std::make_unique<Agent>());
    agents_[0]->start(db_->url(), segment(0), log_path(0), {"--http", "127.0.0.1:0"},
                      {"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(redis_.port())});
    const Exit e = agents_[0]->wait_exit(10s);
    EXPECT_TRUE(e.exited);
    EXPECT_EQ(e.code, 2);
    const std::string log = agents_[0]->log();
    for (const char* name : {"YUXI_CONFIG_SIGNING_KEY", "--signing-key-file", "--insecure-redis"}) {
        EXPECT_NE(log.find(name), std::string::npos) << log;
    }
    unlink_segment(segment(0));

    const std::uint16_t port = free_port();
    Agent insecure;
    insecure.start(db_->url(), segment(0), dir_ / "insecure.log",
                   {"--http", "127.0.0.1:" + std::to_string(port)},
                   {"REDIS_HOST=127.0.0.1", "REDIS_PORT=" + std::to_string(redis_.port()),
                    "YUXI_CONFIG_INSECURE_REDIS=true"});
    Client c = client(0);
    expect_converged(c, *pg_);
    EXPECT_TRUE(insecure.log_contains("--insecure-redis: Redis documents are neither signed"))
        << insecure.log();
    EXPECT_NE(http_get(port, "/metrics").find("\nyuxi_config_insecure 1\n"), std::string::npos);
    insecure.kill();
}

// The documented ACLs (docs/security.md), on a real redis-server: the agents' user runs the
// fleet, the locks' user runs locks, and the app's user can touch neither.
TEST_F(RelayTest, AclUsersConfineTheFleetTheLocksAndTheApp) {
    auto admin = redis();
    const std::vector<std::vector<std::string>> acls = {
        {"ACL",
         "SETUSER",
         "yuxi-agent",
         "on",
         ">agent-pw",
         "resetkeys",
         "~yuxi:config:*",
         "resetchannels",
         "&yuxi:config:*",
         "-@all",
         "+ping",
         "+auth",
         "+select",
         "+get",
         "+set",
         "+del",
         "+incr",
         "+pexpire",
         "+time",
         "+eval",
         "+evalsha",
         "+hset",
         "+hdel",
         "+hgetall",
         "+xadd",
         "+xrange",
         "+xrevrange",
         "+publish",
         "+subscribe"},
        {"ACL",       "SETUSER",      "yuxi-locks",    "on",       ">locks-pw",
         "resetkeys", "~yuxi:lock:*", "resetchannels", "-@all",    "+ping",
         "+auth",     "+select",      "+eval",         "+evalsha", "+get",
         "+set",      "+del",         "+incr",         "+pexpire", "+time"},
        {"ACL", "SETUSER", "yuxi-know", "on", ">app-pw", "resetkeys", "~app:*", "~cache:*",
         "resetchannels", "&app:*", "+@all", "-@dangerous"},
    };
    for (const auto& acl : acls) {
        const std::vector<std::string_view> args(acl.begin(), acl.end());
        (void)admin.command(std::span<const std::string_view>(args));
    }
    const std::vector<std::string> as_agent = {"REDIS_USERNAME=yuxi-agent",
                                               "REDIS_PASSWORD=agent-pw"};
    for (int i = 0; i < 3; ++i) {
        start_agent(i, as_agent);
    }
    std::vector<Client> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(client(i));
    }
    ASSERT_TRUE(eventually([&] { return leader() != -1; }));
    write("acl", "1");
    for (auto& c : clients) {
        EXPECT_TRUE(until_published(c, [&] { return c.get("acl").has_value(); }));
    }
    // The locks' user takes a lock; the agents' user cannot.
    RedisEndpoint locks = redis_.endpoint();
    locks.username = "yuxi-locks";
    locks.password = "locks-pw";
    DistributedLock lock(locks, "acl-job", 5s);
    EXPECT_TRUE(lock.try_acquire());
    EXPECT_GT(lock.fencing_token(), 0u);
    EXPECT_TRUE(lock.release());
    RedisEndpoint agent = redis_.endpoint();
    agent.username = "yuxi-agent";
    agent.password = "agent-pw";
    DistributedLock wrong(agent, "acl-job", 5s);
    EXPECT_THROW((void)wrong.try_acquire(), LockError);
    // The app's user is refused the fleet's keys and channel (NOPERM).
    RedisEndpoint app = redis_.endpoint();
    app.username = "yuxi-know";
    app.password = "app-pw";
    detail::RedisConnection as_app(app);
    for (const auto& cmd :
         std::vector<std::vector<std::string_view>>{{"PUBLISH", "yuxi:config:changes", "x"},
                                                    {"SET", "yuxi:config:snapshot", "x"},
                                                    {"XADD", "yuxi:config:log", "*", "d", "x"},
                                                    {"HSET", "yuxi:config:agents", "pod", "x"},
                                                    {"SET", "yuxi:lock:acl-job", "x"}}) {
        try {
            (void)as_app.command(std::span<const std::string_view>(cmd));
            ADD_FAILURE() << "the app's user may run " << cmd[0] << " " << cmd[1];
        } catch (const LockError& e) {
            EXPECT_NE(std::string(e.what()).find("NOPERM"), std::string::npos) << e.what();
        }
    }
    (void)as_app.command({"SET", "cache:ok", "1"});  // its own keys still work
    for (auto& c : clients) {
        expect_converged(c, *pg_);
    }
}

}  // namespace
}  // namespace yuxi::config::test
