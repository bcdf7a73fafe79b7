// A fixture for the segment's unit tests: a writer's options for a small segment named
// after the running test (so that tests and parallel runs never share one), and the
// removal of its files afterwards.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/detail/mapping.hpp"

namespace yuxi::config::test {

class SmallSegmentTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        options_.name = std::string("yuxi-h1-") + info->test_suite_name() + "-" +
                        std::to_string(::getpid()) + "-" + info->name();
        options_.min_arena_bytes = 1 << 16;
        options_.min_slots = 16;
        options_.max_value_bytes = 4096;
    }
    void TearDown() override {
        ::unlink(detail::segment_path(options_.name).c_str());
        ::unlink(detail::lock_path(options_.name).c_str());
        ::unlink(detail::waiters_path(options_.name).c_str());
    }

    agent::WriterOptions options_;
};

}  // namespace yuxi::config::test
