// The pure parts of high availability: Sentinel addresses and replies, the history check
// that detects a rewound database, and the rewind record's decoder.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstring>
#include <vector>

#include "agent/ops/options.hpp"
#include "agent/postgres/history_check.hpp"
#include "core/history_record.hpp"
#include "core/host_port.hpp"
#include "lock/sentinel.hpp"

namespace yuxi::config {
namespace {

using agent::AppliedHistory;
using agent::check_history;
using agent::DatabaseHistory;

TEST(HostPort, ParsesHostsPortsAndBracketedV6) {
    EXPECT_EQ(parse_host_port("redis-0:26380", 26379), (HostPort{"redis-0", 26380}));
    EXPECT_EQ(parse_host_port(" sentinel ", 26379), (HostPort{"sentinel", 26379}));
    EXPECT_EQ(parse_host_port("[::1]:7", 26379), (HostPort{"::1", 7}));
    EXPECT_EQ(parse_host_port("[::1]", 26379), (HostPort{"::1", 26379}));
    for (const char* bad :
         {"", ":1", "h:", "h:0", "h:65536", "h:x", "[::1", "[]:1", "::1", "a b:1", "h:1:2"}) {
        EXPECT_FALSE(parse_host_port(bad, 26379)) << bad;
    }
}

TEST(HostPort, ListsSkipEmptyItemsAndNameTheBadOne) {
    const auto list = parse_host_list("a:1, b ,,c:3", 26379);
    ASSERT_TRUE(list);
    EXPECT_EQ(*list, (std::vector<HostPort>{{"a", 1}, {"b", 26379}, {"c", 3}}));
    const auto bad = parse_host_list("a:1,b:x", 26379);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.reason().find("'b:x'"), std::string::npos);
    std::string many;
    for (int i = 0; i < 65; ++i) {
        many += "h:1,";
    }
    EXPECT_FALSE(parse_host_list(many, 1));
}

// A reply built by hand, as hiredis would give it.
struct FakeReply {
    explicit FakeReply(int type, std::string text = {}) : text_(std::move(text)) {
        std::memset(&r, 0, sizeof r);
        r.type = type;
        r.str = text_.data();
        r.len = text_.size();
    }
    redisReply r{};
    std::string text_;
};

struct FakeArray {
    explicit FakeArray(std::vector<FakeReply*> items) : items_(items) {
        std::memset(&r, 0, sizeof r);
        r.type = REDIS_REPLY_ARRAY;
        for (FakeReply* i : items_) {
            ptrs_.push_back(&i->r);
        }
        r.elements = ptrs_.size();
        r.element = ptrs_.data();
    }
    redisReply r{};
    std::vector<FakeReply*> items_;
    std::vector<redisReply*> ptrs_;
};

TEST(SentinelReplies, MasterAddressRoleAndSwitchMaster) {
    FakeReply ip(REDIS_REPLY_STRING, "10.0.0.5"), port(REDIS_REPLY_STRING, "6380");
    FakeArray addr({&ip, &port});
    EXPECT_EQ(detail::decode_master_addr(&addr.r), (HostPort{"10.0.0.5", 6380}));
    FakeReply nil(REDIS_REPLY_NIL);
    EXPECT_FALSE(detail::decode_master_addr(&nil.r));
    FakeReply bad_port(REDIS_REPLY_STRING, "70000"), nl(REDIS_REPLY_STRING, "a\nb");
    FakeArray bad1({&ip, &bad_port});
    FakeArray bad2({&nl, &port});
    FakeArray short_one({&ip});
    EXPECT_FALSE(detail::decode_master_addr(&bad1.r));
    EXPECT_FALSE(detail::decode_master_addr(&bad2.r));
    EXPECT_FALSE(detail::decode_master_addr(&short_one.r));
    EXPECT_FALSE(detail::decode_master_addr(nullptr));

    FakeReply master(REDIS_REPLY_STRING, "master"), slave(REDIS_REPLY_STRING, "slave");
    FakeArray role_m({&master}), role_s({&slave});
    EXPECT_TRUE(detail::decode_role_is_master(&role_m.r));
    EXPECT_FALSE(detail::decode_role_is_master(&role_s.r));
    EXPECT_FALSE(detail::decode_role_is_master(&nil.r));

    EXPECT_EQ(detail::decode_switch_master("ha 127.0.0.1 6379 127.0.0.1 6380", "ha"),
              (HostPort{"127.0.0.1", 6380}));
    EXPECT_FALSE(detail::decode_switch_master("other 127.0.0.1 6379 127.0.0.1 6380", "ha"));
    EXPECT_FALSE(detail::decode_switch_master("ha 127.0.0.1 6379 127.0.0.1", "ha"));
    EXPECT_FALSE(detail::decode_switch_master("ha 1 2 3 4 5", "ha"));
    EXPECT_FALSE(detail::decode_switch_master("ha a 1 b 0", "ha"));
}

TEST(SentinelEndpoint, RequiredReplicasDefaultToOneWithSentinel) {
    RedisEndpoint e;
    EXPECT_EQ(e.required_replicas(), 0);
    e.sentinels = {"127.0.0.1:26379"};
    EXPECT_EQ(e.required_replicas(), 1);
    e.min_replicas = 0;
    EXPECT_EQ(e.required_replicas(), 0);
    EXPECT_THROW(detail::parse_sentinel_list("a:1,:2"), std::invalid_argument);
}

DatabaseHistory db(std::uint64_t trimmed, std::uint64_t head,
                   std::vector<agent::AppliedMark> rows) {
    return {trimmed, head, std::move(rows)};
}

TEST(HistoryCheck, SameHistoryPasses) {
    AppliedHistory h;
    h.reset(10, 1000);
    h.applied(12, 1200);
    h.applied(13, 1300);
    EXPECT_EQ(h.revisions_array(), "{10,12,13}");
    EXPECT_FALSE(check_history(h, db(0, 13, {{10, 1000}, {12, 1200}, {13, 1300}})));
    // Newer commits on top change nothing.
    EXPECT_FALSE(check_history(h, db(0, 20, {{10, 1000}, {12, 1200}, {13, 1300}})));
    // Trimmed marks cannot be compared and are taken as matching.
    EXPECT_FALSE(check_history(h, db(12, 13, {{13, 1300}})));
}

TEST(HistoryCheck, LostRevisionsAreFoundFromTheFirstMissingOne) {
    AppliedHistory h;
    h.reset(10, 1000);
    h.applied(12, 1200);
    h.applied(13, 1300);
    const auto r = check_history(h, db(0, 10, {{10, 1000}}));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first_lost, 11u);  // after the last mark that survived
    EXPECT_EQ(r->last_applied, 13u);
    EXPECT_EQ(r->database_head, 10u);
    EXPECT_EQ(r->applied, (std::vector<std::uint64_t>{12, 13}));
    EXPECT_NE(r->describe().find("12, 13"), std::string::npos);
}

TEST(HistoryCheck, AReusedRevisionNumberIsARewind) {
    AppliedHistory h;
    h.reset(10, 1000);
    h.applied(11, 1100);
    // The new primary wrote revision 11 again, later: same number, another commit.
    const auto r = check_history(h, db(0, 11, {{10, 1000}, {11, 5000}}));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->applied, (std::vector<std::uint64_t>{11}));
}

TEST(HistoryCheck, UnknownTimesOnlyCheckPresence) {
    AppliedHistory h;
    h.reset(10, 0);  // an L2 snapshot: no time known
    EXPECT_FALSE(check_history(h, db(0, 10, {{10, 777}})));
    EXPECT_TRUE(check_history(h, db(0, 9, {})));
    // Everything trimmed, yet the database is behind us: lost all the same.
    const auto r = check_history(h, db(5, 7, {}));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->first_lost, 8u);
}

TEST(HistoryCheck, KeepsABoundedHistoryAndRestartsWhenNotOnTop) {
    AppliedHistory h;
    for (std::uint64_t r = 1; r <= 200; ++r) {
        h.applied(r, r * 10);
    }
    EXPECT_EQ(h.marks().size(), AppliedHistory::kKeep);
    EXPECT_EQ(h.marks().front().revision, 200 - AppliedHistory::kKeep + 1);
    h.applied(5, 50);
    ASSERT_EQ(h.marks().size(), 1u);
    EXPECT_EQ(h.marks().front().revision, 5u);
}

TEST(HistoryRecord, RoundTripsAndRefusesWhatIsNotOne) {
    const HistoryRecord rec{"0123abcd", 41, 42};
    const auto back = decode_history_record(encode_history_record(rec));
    ASSERT_TRUE(back) << back.reason();
    EXPECT_EQ(back->id, "0123abcd");
    EXPECT_EQ(back->revision, 41u);
    EXPECT_EQ(back->first_lost, 42u);
    for (const char* bad : {"", "[]", "{\"v\":2,\"id\":\"ab\",\"revision\":1,\"first_lost\":0}",
                            "{\"v\":1,\"id\":\"XY\",\"revision\":1,\"first_lost\":0}",
                            "{\"v\":1,\"id\":\"ab\",\"revision\":-1,\"first_lost\":0}",
                            "{\"v\":1,\"id\":\"ab\",\"first_lost\":0}"}) {
        EXPECT_FALSE(decode_history_record(bad)) << bad;
    }
}

TEST(SentinelOptions, ParsedCheckedAndExclusiveWithAFixedReplica) {
    using agent::parse_options;
    std::map<std::string, std::string> env = {
        {"CONFIG_MODE", "database"},
        {"DATABASE_URL", "postgresql://h/db"},
        {"REDIS_SENTINELS", "s1:26379, s2"},
        {"REDIS_SENTINEL_MASTER", "ha"},
        {"REDIS_SENTINEL_PASSWORD", "pw"},
        // base64 of 32 bytes: a fleet with Redis signs
        {"YUXI_CONFIG_SIGNING_KEY", "eXV4aS1jb25maWctdGVzdC1zaWduaW5nLWtleS0wMDE="}};
    auto lookup = [&](std::string_view n) -> std::optional<std::string> {
        const auto it = env.find(std::string(n));
        return it == env.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    const auto o = parse_options({}, lookup);
    EXPECT_TRUE(o.redis.enabled());
    EXPECT_TRUE(o.relay_enabled());
    EXPECT_EQ(o.redis.sentinels, (std::vector<HostPort>{{"s1", 26379}, {"s2", 26379}}));
    EXPECT_EQ(o.redis.sentinel_master, "ha");
    EXPECT_EQ(o.redis.sentinel_password, "pw");
    env["REDIS_SENTINELS"] = "s1:x";
    EXPECT_THROW((void)parse_options({}, lookup), agent::OptionsError);
    env["REDIS_SENTINELS"] = "s1";
    env["REDIS_REPLICA_HOST"] = "r";
    EXPECT_THROW((void)parse_options({}, lookup), agent::OptionsError);
}

}  // namespace
}  // namespace yuxi::config
