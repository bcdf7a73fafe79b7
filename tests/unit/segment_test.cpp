// The segment writer and the client, in one process: publishing, lookups, deletions,
// snapshots at a revision, compaction and remap, limits, and the writer lock.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "segment_test_support.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;

Change set(std::string key, std::string value, Namespace ns = Namespace::config) {
    return Change{ns, std::move(key), std::move(value), ""};
}

Change del(std::string key) {
    return Change{Namespace::config, std::move(key), std::nullopt, ""};
}

// The shared small segment, with room for the 2 MiB value of the limits test.
class SegmentTest : public test::SmallSegmentTest {
  protected:
    void SetUp() override {
        SmallSegmentTest::SetUp();
        options_.max_value_bytes = 1 << 20;
    }
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

// A batch may change a key more than once (a transaction's rows, a coalesced burst): the
// last change wins and the key takes one entry. Small batches and large ones are
// deduplicated by different code (a scan, a hash map); both layouts' writers share it.
TEST_F(SegmentTest, LaterChangesOfAKeyInOneBatchWin) {
    for (const std::uint32_t layout_version : {2U, 1U}) {
        for (const std::size_t filler : {0UL, 100UL}) {
            SCOPED_TRACE("layout " + std::to_string(layout_version) + ", " +
                         std::to_string(filler) + " other keys");
            options_.layout = layout_version;
            const std::vector<Change> initial = {set("b", "0")};
            auto w = SegmentWriter::create(options_, initial, 1);
            std::vector<Change> batch = {set("a", "1"), set("b", "1"), set("a", "2"), del("b"),
                                         set("c", "3"), set("b", "4"), del("c")};
            for (std::size_t i = 0; i < filler; ++i) {
                batch.push_back(set("f" + std::to_string(i), std::to_string(i)));
            }
            batch.push_back(set("a", "5"));
            const auto r = w.apply(batch, 2);
            // a and b once each; c, set then deleted and absent before, writes nothing
            EXPECT_EQ(r.applied, 2 + filler);
            auto c = Client::open(options_.name);
            EXPECT_EQ(c.get("a"), "5");
            EXPECT_EQ(c.get("b"), "4");
            EXPECT_FALSE(c.get("c").has_value());
            EXPECT_EQ(w.live_entries(), 2 + filler);
        }
    }
}

// The writer finds keys through its own copy of the index (writable_segment.hpp) and must
// keep it equal to the shared one through every path that writes slots: publishes of new
// and existing keys, deletions, foreground compactions, background ones taken over with
// their replay. If the two ever disagreed, a new key would land on another key's slot or a
// change would miss its key: a model of the contents catches either.
TEST_F(SegmentTest, WriterIndexAgreesWithAModelThroughCompactions) {
    auto w = SegmentWriter::create(options_, {}, 1);
    auto c = Client::open(options_.name);
    std::map<std::string, std::string> model;
    std::uint64_t rng = 12345;
    const auto next = [&rng](std::uint64_t n) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        return (rng >> 33) % n;
    };
    constexpr std::uint64_t kKeys = 300;  // enough to grow the 16-slot index many times
    for (std::uint64_t rev = 2; rev < 1500; ++rev) {
        std::vector<Change> batch;
        for (std::uint64_t i = 0, n = 1 + next(6); i < n; ++i) {
            std::string key = "k" + std::to_string(next(kKeys));
            if (next(5) == 0) {
                model.erase(key);
                batch.push_back(del(std::move(key)));
            } else {
                std::string value = "\"" + std::string(next(300), 'v') + std::to_string(rev) + "\"";
                model[key] = value;
                batch.push_back(set(std::move(key), std::move(value)));
            }
        }
        (void)w.apply(batch, rev);
        if (rev % 97 == 0) {
            w.finish_compaction();
        }
        ASSERT_EQ(w.live_entries(), model.size()) << "revision " << rev;
        for (std::uint64_t k = 0; k < kKeys; ++k) {
            const std::string key = "k" + std::to_string(k);
            const auto it = model.find(key);
            const auto seen = c.get(key);
            if (it == model.end()) {
                ASSERT_FALSE(seen.has_value()) << key << " at revision " << rev;
                ASSERT_FALSE(w.get(Namespace::config, key).has_value()) << key;
            } else {
                ASSERT_EQ(seen, it->second) << key << " at revision " << rev;
                ASSERT_EQ(w.get(Namespace::config, key), it->second) << key;
            }
        }
    }
    EXPECT_GE(w.compactions(), 5u);
}

}  // namespace
}  // namespace yuxi::config
