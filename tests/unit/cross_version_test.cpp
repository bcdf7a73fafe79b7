// Layouts 1 and 2 side by side, as an upgrade meets them: this client reads a segment an
// older agent (or this one with --segment-layout 1) wrote; a client of the previous
// release meeting a layout-2 segment is refused with both versions named, never a wrong
// value; and an agent switching layouts in either direction retires the other layout's
// segment, so that readers move to the new one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "segment_test_support.hpp"
#include "yuxi/config/client.hpp"
#include "yuxi/config/detail/segment_view_v1.hpp"

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;

Change set(std::string key, std::string value, Namespace ns = Namespace::config,
           std::string category = "") {
    return Change{ns, std::move(key), std::move(value), std::move(category)};
}

Change del(std::string key) {
    return Change{Namespace::config, std::move(key), std::nullopt, ""};
}

std::vector<unsigned char> read_bytes(const std::string& name) {
    std::ifstream in(detail::segment_path(name), std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

template <class Pred>
bool eventually(Pred&& pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

class CrossVersionTest : public test::SmallSegmentTest {
  protected:
    WriterOptions layout(std::uint32_t version) const {
        WriterOptions o = options_;
        o.layout = version;
        return o;
    }

    std::vector<Change> initial_ = {
        set("embed_model", "\"bge-m3\"", Namespace::config, "models"),
        set("top_k", "10"),
        set("ratio", "0.25"),
        set("enabled", "true"),
        set("escaped", "\"a\\\"b\""),
        set("global_metadata", "{\"databases\":{}}", Namespace::metadata),
    };
};

TEST_F(CrossVersionTest, AgentWritesLayoutOneOnRequest) {
    auto w = SegmentWriter::create(layout(1), initial_, 1);
    EXPECT_EQ(w.layout(), 1u);
    const auto bytes = read_bytes(options_.name);
    ASSERT_GE(bytes.size(), sizeof(layout::SegmentHeader));
    layout::SegmentHeader h{};
    std::memcpy(&h, bytes.data(), sizeof h);
    EXPECT_EQ(h.version, 1u);
    EXPECT_EQ(h.fingerprint, layout::v1::kFingerprint);

    // What a client of the previous release does on attach: it accepts the segment.
    detail::v1::SegmentView old_client;
    std::string error;
    EXPECT_TRUE(old_client.attach(bytes.data(), bytes.size(), error)) << error;
    EXPECT_THROW((void)SegmentWriter::create(layout(3), initial_, 1), agent::WriterError);
}

TEST_F(CrossVersionTest, ThisClientReadsLayoutOne) {
    auto w = SegmentWriter::create(layout(1), initial_, 1);
    auto c = Client::open(options_.name);
    EXPECT_EQ(c.revision(), 1u);
    EXPECT_EQ(c.get("embed_model"), "\"bge-m3\"");
    EXPECT_EQ(c.get_string("embed_model"), "bge-m3");
    EXPECT_EQ(c.get_string("escaped"), "a\"b");
    EXPECT_EQ(c.get<std::int64_t>("top_k"), 10);
    EXPECT_EQ(c.get<double>("ratio"), 0.25);
    EXPECT_EQ(c.get<bool>("enabled"), true);
    EXPECT_EQ(c.get<bool>("top_k"), std::nullopt);
    EXPECT_EQ(c.get_or<std::int64_t>("absent", 7), 7);
    EXPECT_EQ(c.metadata("global_metadata"), "{\"databases\":{}}");
    std::array<char, 64> buf{};
    const ReadResult r = c.read("top_k", buf);
    ASSERT_TRUE(r);
    EXPECT_EQ(std::string_view(buf.data(), r.size), "10");
    const auto v = c.view("embed_model");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->category(), "models");
    EXPECT_EQ(v->revision(), 1u);
    EXPECT_EQ(v->as<std::string_view>(), "bge-m3");
    {
        const Pin pin = c.pin();
        EXPECT_EQ(pin.view("top_k"), "10");
        EXPECT_EQ(pin.get<std::string_view>("embed_model"), "bge-m3");
        EXPECT_EQ(pin.get<std::int64_t>("top_k"), 10);
        EXPECT_EQ(pin.revision(), 1u);
    }

    const Snapshot s1 = c.snapshot();
    std::vector<Change> b2 = {set("top_k", "20"), del("enabled")};
    (void)w.apply(b2, 2);
    w.notify();
    EXPECT_TRUE(c.wait_for_revision(2, std::chrono::seconds(5)));
    EXPECT_EQ(c.get<std::int64_t>("top_k"), 20);
    EXPECT_FALSE(c.get("enabled").has_value());
    EXPECT_EQ(s1.get("top_k"), "10");
    EXPECT_EQ(s1.get("enabled"), "true");
    int listed = 0;
    EXPECT_TRUE(s1.for_each(Namespace::config, "", [&](const EntryInfo&) { ++listed; }));
    EXPECT_EQ(listed, 5);
    const Health h = c.health();
    EXPECT_EQ(h.revision, 2u);
    EXPECT_EQ(h.entries, 5u);  // four config keys and one metadata document
    EXPECT_TRUE(h.writer_alive);
    EXPECT_EQ(SegmentWriter::existing_revision(options_.name), 2u);
}

// A client of the previous release meets a layout-2 segment: refused, with both versions
// named and the side to upgrade; its Mapping reports such errors as `incompatible`
// because they mention the layout.
TEST_F(CrossVersionTest, PreviousReleaseClientRefusesLayoutTwo) {
    auto w = SegmentWriter::create(layout(2), initial_, 1);
    const auto bytes = read_bytes(options_.name);
    detail::v1::SegmentView old_client;
    std::string error;
    EXPECT_FALSE(old_client.attach(bytes.data(), bytes.size(), error));
    EXPECT_EQ(error, "segment written by layout v2, this client reads v1: upgrade the client");
    EXPECT_FALSE(old_client.attached());
}

TEST_F(CrossVersionTest, UnknownLayoutsNameWhatThisClientReads) {
    auto w = SegmentWriter::create(layout(2), initial_, 1);
    for (const std::uint32_t version : {0u, 3u}) {
        auto bytes = read_bytes(options_.name);
        std::memcpy(bytes.data() + offsetof(layout::SegmentHeader, version), &version,
                    sizeof version);
        const std::string copy = options_.name + "-copy";
        {
            std::ofstream out(detail::segment_path(copy), std::ios::binary | std::ios::trunc);
            out.write(reinterpret_cast<const char*>(bytes.data()),
                      static_cast<std::streamsize>(bytes.size()));
        }
        try {
            (void)Client::open(copy);
            ADD_FAILURE() << "layout " << version << " was accepted";
        } catch (const SegmentError& e) {
            EXPECT_EQ(e.kind(), SegmentError::Kind::incompatible);
            const std::string want = "segment written by layout v" + std::to_string(version) +
                                     ", this client reads v1 and v2: upgrade the " +
                                     (version == 0 ? "agent" : "client");
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        }
        ::unlink(detail::segment_path(copy).c_str());
    }
}

// Upgrading the agent: a layout-2 writer takes over a layout-1 segment and retires it;
// this client moves over; a client of the previous release sees the retired flag (and
// keeps reading the last state, since it cannot open the replacement).
TEST_F(CrossVersionTest, UpgradeFromLayoutOneRetiresIt) {
    std::optional<SegmentWriter> w(SegmentWriter::create(layout(1), initial_, 1));
    auto c = Client::open(options_.name);
    auto before = detail::Mapping::open(options_.name);
    ASSERT_TRUE(before->legacy());
    EXPECT_EQ(c.get<std::int64_t>("top_k"), 10);
    w.reset();

    const std::uint64_t next = SegmentWriter::existing_revision(options_.name) + 1;
    EXPECT_EQ(next, 2u);
    std::vector<Change> all = initial_;
    all.push_back(set("top_k", "11"));
    auto w2 = SegmentWriter::create(layout(2), all, next);
    EXPECT_TRUE(before->retired());
    EXPECT_TRUE(before->legacy_view().retired());
    EXPECT_TRUE(eventually([&] { return c.revision() == 2; }));
    EXPECT_EQ(c.get<std::int64_t>("top_k"), 11);
    EXPECT_FALSE(detail::Mapping::open(options_.name)->legacy());
}

// Rolling the agent back: a layout-1 writer takes over a layout-2 segment and retires it,
// and this client follows it to layout 1.
TEST_F(CrossVersionTest, RollbackToLayoutOneRetiresLayoutTwo) {
    std::optional<SegmentWriter> w(SegmentWriter::create(layout(2), initial_, 1));
    auto c = Client::open(options_.name);
    EXPECT_EQ(c.get<std::int64_t>("top_k"), 10);
    auto before = detail::Mapping::open(options_.name);
    w.reset();
    std::vector<Change> all = initial_;
    all.push_back(set("top_k", "12"));
    auto w1 = SegmentWriter::create(layout(1), all, 2);
    EXPECT_TRUE(before->retired());
    EXPECT_TRUE(eventually([&] { return c.revision() == 2; }));
    EXPECT_EQ(c.get<std::int64_t>("top_k"), 12);
    EXPECT_TRUE(detail::Mapping::open(options_.name)->legacy());
}

// Layout 1 compacts too (in the foreground): readers of this client follow it.
TEST_F(CrossVersionTest, LayoutOneCompactsUnderThisClient) {
    WriterOptions o = layout(1);
    o.min_arena_bytes = 4 << 10;
    auto w = SegmentWriter::create(o, initial_, 1);
    auto c = Client::open(options_.name);
    std::uint64_t rev = 1;
    while (w.compactions() < 3) {
        ++rev;
        std::vector<Change> b = {set("top_k", std::to_string(rev)),
                                 set("pad", "\"" + std::string(300, 'p') + "\"")};
        (void)w.apply(b, rev);
        ASSERT_EQ(c.get<std::int64_t>("top_k"), static_cast<std::int64_t>(rev));
    }
    EXPECT_EQ(c.get_string("embed_model"), "bge-m3");
}

}  // namespace
}  // namespace yuxi::config
