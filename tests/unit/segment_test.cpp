// The segment writer and the client, in one process: publishing, lookups, deletions,
// snapshots at a revision, compaction and remap, limits, and the writer lock.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;

std::string unique_name(const char* what) {
    return std::string("yuxi-test-") + what + "-" + std::to_string(::getpid());
}

Change set(std::string key, std::string value, Namespace ns = Namespace::config) {
    return Change{ns, std::move(key), std::move(value), ""};
}

Change del(std::string key) {
    return Change{Namespace::config, std::move(key), std::nullopt, ""};
}

class SegmentTest : public ::testing::Test {
  protected:
    void SetUp() override {
        options_.name =
            unique_name(::testing::UnitTest::GetInstance()->current_test_info()->name());
        options_.min_arena_bytes = 1 << 16;
        options_.min_slots = 16;
        options_.max_value_bytes = 1 << 20;
    }
    void TearDown() override {
        ::unlink(detail::segment_path(options_.name).c_str());
        ::unlink(detail::lock_path(options_.name).c_str());
    }
    WriterOptions options_;
};

TEST_F(SegmentTest, PublishesInitialEntriesAndUpdates) {
    std::vector<Change> initial = {
        set("embed_model", "\"bge-m3\""), set("top_k", "10"),
        set("global_metadata", "{\"databases\":{}}", Namespace::metadata)};
    auto w = SegmentWriter::create(options_, initial, 1);
    auto c = Client::open(options_.name);
    EXPECT_EQ(c.revision(), 1u);
    EXPECT_EQ(c.get("embed_model"), "\"bge-m3\"");
    EXPECT_EQ(c.get_string("embed_model"), "bge-m3");
    EXPECT_EQ(c.get_or<std::int64_t>("top_k", 3), 10);
    EXPECT_EQ(c.get_or<std::int64_t>("absent", 3), 3);
    EXPECT_EQ(c.metadata("global_metadata"), "{\"databases\":{}}");
    EXPECT_FALSE(c.get("global_metadata").has_value());  // other namespace

    std::vector<Change> batch = {set("top_k", "20"), del("embed_model"), set("new_key", "true")};
    const auto r = w.apply(batch, 2);
    EXPECT_EQ(r.applied, 3u);
    EXPECT_EQ(c.revision(), 2u);
    EXPECT_EQ(c.get("top_k"), "20");
    EXPECT_FALSE(c.get("embed_model").has_value());
    EXPECT_TRUE(c.get_or<bool>("new_key", false));
}

TEST_F(SegmentTest, SnapshotReadsItsRevision) {
    std::vector<Change> initial = {set("a", "1"), set("b", "1")};
    auto w = SegmentWriter::create(options_, initial, 1);
    auto c = Client::open(options_.name);
    const Snapshot s1 = c.snapshot();
    std::vector<Change> b2 = {set("a", "2"), del("b"), set("c", "2")};
    (void)w.apply(b2, 2);
    EXPECT_EQ(s1.get("a"), "1");
    EXPECT_EQ(s1.get("b"), "1");
    EXPECT_FALSE(s1.get("c").has_value());
    const Snapshot s2 = c.snapshot();
    EXPECT_EQ(s2.get("a"), "2");
    EXPECT_FALSE(s2.get("b").has_value());
    int n = 0;
    EXPECT_TRUE(s1.for_each(Namespace::config, "", [&](const EntryInfo&) { ++n; }));
    EXPECT_EQ(n, 2);
}

TEST_F(SegmentTest, CompactionRemapsReadersAndKeepsOldViews) {
    std::vector<Change> initial = {set("k", "0")};
    auto w = SegmentWriter::create(options_, initial, 1);
    auto c = Client::open(options_.name);
    auto old_view = c.view("k");
    ASSERT_TRUE(old_view.has_value());
    const Snapshot old_snap = c.snapshot();
    const std::string big(10000, 'x');
    for (std::uint64_t rev = 2; rev < 200; ++rev) {
        std::vector<Change> b = {set("k", std::to_string(rev)),
                                 set("key" + std::to_string(rev), "\"" + big + "\"")};
        (void)w.apply(b, rev);
        ASSERT_EQ(c.get("k"), std::to_string(rev));
    }
    EXPECT_GT(w.compactions(), 0u);
    EXPECT_EQ(old_view->data(), "0");
    EXPECT_EQ(old_snap.get("k"), "0");
    EXPECT_EQ(c.revision(), 199u);
    EXPECT_EQ(c.get("key150")->size(), big.size() + 2);
}

TEST_F(SegmentTest, RefusesOversizedValuesAndKeepsTheRest) {
    auto w = SegmentWriter::create(options_, {}, 1);
    std::vector<Change> b = {set("ok", "1"), set("huge", std::string(2 << 20, '1'))};
    const auto r = w.apply(b, 2);
    ASSERT_EQ(r.rejected.size(), 1u);
    EXPECT_EQ(r.rejected[0].key, "huge");
    auto c = Client::open(options_.name);
    EXPECT_EQ(c.get("ok"), "1");
    EXPECT_FALSE(c.get("huge").has_value());
}

TEST_F(SegmentTest, SecondWriterIsRefused) {
    auto w = SegmentWriter::create(options_, {}, 1);
    try {
        auto w2 = SegmentWriter::create(options_, {}, 1);
        FAIL() << "second writer was allowed";
    } catch (const agent::WriterError& e) {
        EXPECT_NE(std::string(e.what()).find("already writing"), std::string::npos) << e.what();
    }
}

TEST_F(SegmentTest, SegmentIsCreatedWithMode0640) {
    auto w = SegmentWriter::create(options_, {}, 1);
    struct stat st {};
    ASSERT_EQ(::stat(detail::segment_path(options_.name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(SegmentTest, HealthReportsLiveWriter) {
    {
        auto w = SegmentWriter::create(options_, {}, 7);
        w.set_source_state(SourceState::ok);
        w.heartbeat();
        auto c = Client::open(options_.name);
        const Health h = c.health();
        EXPECT_TRUE(h.writer_alive);
        EXPECT_EQ(h.revision, 7u);
        EXPECT_EQ(h.source_state, SourceState::ok);
        EXPECT_TRUE(h.fresh());
    }
    auto c = Client::open(options_.name);
    EXPECT_FALSE(c.health().writer_alive);
}

TEST_F(SegmentTest, OpenAbsentSegmentSaysWhatToDo) {
    try {
        (void)Client::open("yuxi-test-no-such-segment");
        FAIL();
    } catch (const SegmentError& e) {
        EXPECT_EQ(e.kind(), SegmentError::Kind::absent);
        EXPECT_NE(std::string(e.what()).find("agent running"), std::string::npos);
    }
}

}  // namespace
}  // namespace yuxi::config
