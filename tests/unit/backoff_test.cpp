// The reconnect backoff: full jitter within a window that doubles up to the cap, reset
// after a success, no overflow however long the outage, and a spread that is not a wave.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "core/backoff.hpp"

namespace yuxi::config::agent {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(BackoffTest, WindowDoublesUpToTheCap) {
    Backoff b(milliseconds(100), seconds(30), 1);
    const milliseconds expected[] = {milliseconds(100),  milliseconds(200),   milliseconds(400),
                                     milliseconds(800),  milliseconds(1600),  milliseconds(3200),
                                     milliseconds(6400), milliseconds(12800), milliseconds(25600),
                                     seconds(30),        seconds(30),         seconds(30)};
    for (const milliseconds want : expected) {
        EXPECT_EQ(b.ceiling(), want) << "after " << b.failures() << " failures";
        (void)b.next();
    }
}

TEST(BackoffTest, DelaysStayWithinTheWindow) {
    Backoff b(milliseconds(100), seconds(30), 42);
    for (int i = 0; i < 200; ++i) {
        const Backoff::Duration window = b.ceiling();
        const Backoff::Duration d = b.next();
        EXPECT_GE(d.count(), 0);
        EXPECT_LE(d, window);
    }
    EXPECT_EQ(b.failures(), 200u);
}

TEST(BackoffTest, ResetStartsOver) {
    Backoff b(milliseconds(100), seconds(30), 7);
    for (int i = 0; i < 10; ++i) {
        (void)b.next();
    }
    EXPECT_EQ(b.ceiling(), seconds(30));
    b.reset();
    EXPECT_EQ(b.failures(), 0u);
    EXPECT_EQ(b.ceiling(), milliseconds(100));
    EXPECT_LE(b.next(), milliseconds(100));
}

TEST(BackoffTest, NoOverflowAfterVeryManyFailures) {
    Backoff b(microseconds(1), seconds(30), 3);
    for (int i = 0; i < 100000; ++i) {
        const Backoff::Duration d = b.next();
        ASSERT_GE(d.count(), 0);
        ASSERT_LE(d, seconds(30));
    }
    EXPECT_EQ(b.ceiling(), seconds(30));
}

// Full jitter: delays spread over the whole window (mean near half of it), not a fixed
// delay that would make a fleet reconnect in waves.
TEST(BackoffTest, FullJitterSpreadsOverTheWindow) {
    constexpr int kSamples = 20000;
    double sum = 0;
    Backoff::Duration lo = seconds(31);
    Backoff::Duration hi{0};
    std::set<Backoff::Duration::rep> distinct;
    for (int i = 0; i < kSamples; ++i) {
        Backoff b(milliseconds(100), seconds(30), static_cast<std::uint64_t>(i) + 1000);
        for (int k = 0; k < 20; ++k) {
            (void)b.next();  // to the cap
        }
        const Backoff::Duration d = b.next();
        sum += static_cast<double>(d.count());
        lo = std::min(lo, d);
        hi = std::max(hi, d);
        distinct.insert(d.count());
    }
    const double mean_s = sum / kSamples / 1e6;
    EXPECT_NEAR(mean_s, 15.0, 0.5);
    EXPECT_LT(lo, seconds(1));
    EXPECT_GT(hi, seconds(29));
    EXPECT_GT(distinct.size(), static_cast<std::size_t>(kSamples * 0.95));
}

TEST(BackoffTest, SeedsDiffer) {
    Backoff a(milliseconds(100), seconds(30));
    Backoff b(milliseconds(100), seconds(30));
    for (int i = 0; i < 8; ++i) {
        (void)a.next();
        (void)b.next();
    }
    int same = 0;
    for (int i = 0; i < 16; ++i) {
        same += a.next() == b.next() ? 1 : 0;
    }
    EXPECT_LT(same, 16) << "two agents must not back off in lockstep";
}

TEST(BackoffTest, BadArgumentsAreClamped) {
    Backoff b(microseconds(0), microseconds(0), 5);
    EXPECT_EQ(b.base(), microseconds(1));
    EXPECT_EQ(b.cap(), microseconds(1));
    EXPECT_LE(b.next(), microseconds(1));
    Backoff c(seconds(10), seconds(1), 5);  // cap below base
    EXPECT_EQ(c.cap(), seconds(10));
}

}  // namespace
}  // namespace yuxi::config::agent
