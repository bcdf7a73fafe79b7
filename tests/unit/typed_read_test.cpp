// Typed reads and pins: the scalar the writer stores beside each value gives what parsing
// the text would (checked against the client's own json_as over many values), strings are
// unescaped, borrowed views stay valid for the pin's life even when the segment is
// replaced meanwhile, and a compaction built in the background loses no change made
// while it was built.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "segment_test_support.hpp"
#include "support/sanitized.hpp"
#include "yuxi/config/client.hpp"
#include "yuxi/config/detail/json_text.hpp"

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;

Change set(std::string key, std::string value) {
    return Change{Namespace::config, std::move(key), std::move(value), ""};
}

using TypedReadTest = test::SmallSegmentTest;

// JSON texts of every kind a typed read must agree with parsing on.
const std::vector<std::string>& corpus() {
    static const std::vector<std::string> texts = {"0",
                                                   "-0",
                                                   "10",
                                                   "-17",
                                                   "9223372036854775807",
                                                   "-9223372036854775808",
                                                   "9223372036854775808",
                                                   "12345678901234567890",
                                                   "1.5",
                                                   "-0.25",
                                                   "1e3",
                                                   "2.5E-3",
                                                   "1.0",
                                                   " 42 ",
                                                   "\n7\t",
                                                   "true",
                                                   "false",
                                                   " true",
                                                   "null",
                                                   "\"\"",
                                                   "\"text\"",
                                                   "\"bge-m3\"",
                                                   "\"a\\\"b\"",
                                                   "\"line\\nbreak\"",
                                                   "\"tab\\t\\\\\"",
                                                   "\"\\u00e9t\\u00e9\"",
                                                   "\"\\ud83d\\ude00\"",
                                                   "\"10\"",
                                                   "\"true\"",
                                                   "{\"a\":1}",
                                                   "[1,2]",
                                                   "{}",
                                                   "[]",
                                                   "\"unterminated",
                                                   "tru",
                                                   "1.2.3",
                                                   "--1",
                                                   "+1",
                                                   "0x10",
                                                   " \"padded\" ",
                                                   "\"\\/slash\"",
                                                   "\"bad\\q\""};
    return texts;
}

TEST_F(TypedReadTest, TypedReadsAgreeWithParsingTheText) {
    std::vector<Change> initial;
    for (std::size_t i = 0; i < corpus().size(); ++i) {
        initial.push_back(set("k" + std::to_string(i), corpus()[i]));
    }
    auto w = SegmentWriter::create(options_, initial, 1);
    auto c = Client::open(options_.name);
    const Pin pin = c.pin();
    for (std::size_t i = 0; i < corpus().size(); ++i) {
        const std::string key = "k" + std::to_string(i);
        const std::string& text = corpus()[i];
        SCOPED_TRACE(text);
        ASSERT_EQ(c.get(key), text);
        EXPECT_EQ(c.get<bool>(key), detail::json_as<bool>(text));
        EXPECT_EQ(c.get<std::int64_t>(key), detail::json_as<std::int64_t>(text));
        const auto d = c.get<double>(key);
        const auto want = detail::json_as<double>(text);
        ASSERT_EQ(d.has_value(), want.has_value());
        if (d) {
            EXPECT_EQ(*d, *want);
        }
        const auto s = pin.get<std::string_view>(key);
        const auto unquoted = detail::json_unquote(text);
        ASSERT_EQ(s.has_value(), unquoted.has_value());
        if (s) {
            EXPECT_EQ(*s, *unquoted);
        }
        EXPECT_EQ(c.get_string(key), detail::json_string_or_text(text));
        EXPECT_EQ(c.get_or<std::string>(key, "fallback"),
                  detail::json_as<std::string>(text).value_or("fallback"));
        EXPECT_EQ(c.get_or<int>(key, -1), detail::json_as<int>(text).value_or(-1));
        EXPECT_EQ(c.get_or<std::int64_t>(key, -1),
                  detail::json_as<std::int64_t>(text).value_or(-1));
        const auto v = c.view(key);
        ASSERT_TRUE(v);
        EXPECT_EQ(v->as<std::int64_t>(), detail::json_as<std::int64_t>(text));
        EXPECT_EQ(pin.view(key), text);
    }
    EXPECT_EQ(c.get<std::int64_t>("absent"), std::nullopt);
    EXPECT_EQ(pin.get<bool>("absent"), std::nullopt);
}

TEST_F(TypedReadTest, DeletedKeysHaveNoTypedValue) {
    auto w = SegmentWriter::create(options_, std::vector<Change>{set("n", "5")}, 1);
    auto c = Client::open(options_.name);
    EXPECT_EQ(c.get<std::int64_t>("n"), 5);
    std::vector<Change> b = {Change{Namespace::config, "n", std::nullopt, ""}};
    (void)w.apply(b, 2);
    EXPECT_EQ(c.get<std::int64_t>("n"), std::nullopt);
    EXPECT_EQ(c.pin().view("n"), std::nullopt);
}

// The views of a pin point into the mapping it was made on: the agent replacing the
// segment (compaction) leaves them valid, and the pin keeps reading that mapping; a new
// pin sees the replacement.
TEST_F(TypedReadTest, PinnedViewsOutliveAReplacedSegment) {
    options_.min_arena_bytes = 4 << 10;
    auto w = SegmentWriter::create(options_, std::vector<Change>{set("model", "\"m-1\"")}, 1);
    auto c = Client::open(options_.name);
    std::optional<Pin> pin(c.pin());
    const auto before = pin->view("model");
    const auto text = pin->get<std::string_view>("model");
    ASSERT_EQ(before, "\"m-1\"");
    const std::uint64_t compactions = w.compactions();
    std::uint64_t rev = 1;
    while (w.compactions() < compactions + 2) {
        ++rev;
        std::vector<Change> b = {set("model", "\"m-" + std::to_string(rev) + "\""),
                                 set("pad", "\"" + std::string(500, 'p') + "\"")};
        (void)w.apply(b, rev);
        w.finish_compaction();
        ASSERT_LT(rev, 1000u);
    }
    // Other reads on this thread remap meanwhile; the pin's views must not move.
    EXPECT_EQ(c.get("model"), "\"m-" + std::to_string(rev) + "\"");
    EXPECT_EQ(before, "\"m-1\"");
    EXPECT_EQ(text, "m-1");
    // The pinned mapping received batches until it was retired, then froze.
    const std::uint64_t frozen = pin->revision();
    EXPECT_LT(frozen, rev);
    EXPECT_EQ(pin->view("model"), "\"m-" + std::to_string(frozen) + "\"");
    pin.reset();
    EXPECT_EQ(c.pin().view("model"), "\"m-" + std::to_string(rev) + "\"");
}

// Changes, deletions and new keys made while a compaction is built in the background all
// reach the compacted segment.
TEST_F(TypedReadTest, BackgroundCompactionKeepsChangesMadeMeanwhile) {
    options_.min_arena_bytes = 64 << 10;
    std::vector<Change> initial;
    for (int k = 0; k < 200; ++k) {
        initial.push_back(set("k" + std::to_string(k), std::to_string(k)));
    }
    auto w = SegmentWriter::create(options_, initial, 1);
    auto c = Client::open(options_.name);
    std::vector<std::int64_t> want(400, -1);
    for (int k = 0; k < 200; ++k) {
        want[static_cast<std::size_t>(k)] = k;
    }
    std::uint64_t rev = 1;
    int started = 0;
    const int rounds = test::kSanitized ? 3 : 10;
    while (started < rounds) {
        ++rev;
        std::vector<Change> b;
        for (int j = 0; j < 8; ++j) {
            const int k = static_cast<int>((rev * 37 + static_cast<std::uint64_t>(j) * 101) % 400);
            if ((rev + static_cast<std::uint64_t>(j)) % 5 == 0) {
                b.push_back(Change{Namespace::config, "k" + std::to_string(k), std::nullopt, ""});
                want[static_cast<std::size_t>(k)] = -1;
            } else {
                b.push_back(set("k" + std::to_string(k), std::to_string(rev * 1000 + j)));
                want[static_cast<std::size_t>(k)] = static_cast<std::int64_t>(rev * 1000 + j);
            }
        }
        const bool was = w.compacting();
        (void)w.apply(b, rev);
        started += !was && w.compacting() ? 1 : 0;
        ASSERT_LT(rev, 100000u);
    }
    w.finish_compaction();
    EXPECT_FALSE(w.compacting());
    EXPECT_GE(w.compactions(), static_cast<std::uint64_t>(rounds - 1));
    auto fresh = Client::open(options_.name);
    std::uint64_t live = 0;
    for (int k = 0; k < 400; ++k) {
        const auto got = fresh.get<std::int64_t>("k" + std::to_string(k));
        const std::int64_t expect = want[static_cast<std::size_t>(k)];
        EXPECT_EQ(got, expect < 0 ? std::nullopt : std::optional<std::int64_t>(expect)) << k;
        EXPECT_EQ(c.get<std::int64_t>("k" + std::to_string(k)), got) << k;
        live += got ? 1 : 0;
    }
    EXPECT_EQ(fresh.health().entries, live);
    EXPECT_EQ(w.live_entries(), live);
    EXPECT_EQ(fresh.revision(), rev);
}

// notify() wakes a reader that announced its sleep, and makes no system call otherwise.
TEST_F(TypedReadTest, NotifyWakesOnlyAnnouncedSleepers) {
    auto w = SegmentWriter::create(options_, std::vector<Change>{set("n", "1")}, 1);
    for (std::uint64_t rev = 2; rev < 50; ++rev) {
        std::vector<Change> b = {set("n", std::to_string(rev))};
        (void)w.apply(b, rev);
        w.notify();
    }
    EXPECT_EQ(w.wakes(), 0u) << "nobody sleeps: no futex wake";

    auto c = Client::open(options_.name);
    bool moved = false;
    std::thread waiter([&] { moved = c.wait_for_change(49, std::chrono::seconds(60)); });
    // The waiter announces itself in the waiters page before it sleeps.
    auto page = detail::WaitersMapping::open(options_.name);
    ASSERT_NE(page, nullptr);
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (page->announced() <= detail::monotonic_ns() &&
           std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::vector<Change> b = {set("n", "50")};
    (void)w.apply(b, 50);
    w.notify();
    waiter.join();
    EXPECT_TRUE(moved);
    EXPECT_EQ(w.wakes(), 1u);
}

}  // namespace
}  // namespace yuxi::config
