// The segment layout: the sizes and offsets every build and the Python module rely on, and
// the refusal of segments of another layout, version or build, with a message that says
// which side to upgrade.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "yuxi/config/client.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;
using layout::CopyHeader;
using layout::EntryHeader;
using layout::SegmentHeader;
using layout::Slot;

// The static_asserts of layout.hpp pin only some of this; a reader in another language
// depends on all of it, so every field is checked here.
TEST(LayoutTest, SegmentHeaderFieldsSitWhereReadersExpectThem) {
    EXPECT_TRUE(std::is_standard_layout_v<SegmentHeader>);
    EXPECT_TRUE(std::is_trivially_copyable_v<SegmentHeader>);
    EXPECT_EQ(sizeof(SegmentHeader), 256u);
    EXPECT_LE(sizeof(SegmentHeader), layout::kHeaderSize);
    EXPECT_EQ(layout::kHeaderSize, 4096u);
    EXPECT_EQ(alignof(SegmentHeader), layout::kCacheLine);
    EXPECT_EQ(offsetof(SegmentHeader, magic), 0u);
    EXPECT_EQ(offsetof(SegmentHeader, version), 8u);
    EXPECT_EQ(offsetof(SegmentHeader, fingerprint), 12u);
    EXPECT_EQ(offsetof(SegmentHeader, total_size), 16u);
    EXPECT_EQ(offsetof(SegmentHeader, index_offset), 24u);
    EXPECT_EQ(offsetof(SegmentHeader, copy_bytes), 32u);
    EXPECT_EQ(offsetof(SegmentHeader, slot_count), 40u);
    EXPECT_EQ(offsetof(SegmentHeader, arena_offset), 48u);
    EXPECT_EQ(offsetof(SegmentHeader, arena_size), 56u);
    // The latch and the retired flag share line 1, read by every lookup, and nothing the
    // writer updates often.
    EXPECT_EQ(offsetof(SegmentHeader, seq), 64u);
    EXPECT_EQ(offsetof(SegmentHeader, retired), 72u);
    EXPECT_EQ(offsetof(SegmentHeader, notify), 128u);
    EXPECT_EQ(offsetof(SegmentHeader, heartbeat_ns), 192u);
    EXPECT_EQ(offsetof(SegmentHeader, writer_pid), 200u);
    EXPECT_EQ(offsetof(SegmentHeader, writer_start_ns), 208u);
    EXPECT_EQ(offsetof(SegmentHeader, created_ns), 216u);
    EXPECT_EQ(offsetof(SegmentHeader, arena_used), 224u);
    EXPECT_EQ(offsetof(SegmentHeader, updates_applied), 232u);
    EXPECT_EQ(offsetof(SegmentHeader, source_state), 240u);
    EXPECT_EQ(offsetof(SegmentHeader, source_changed_ns), 248u);
}

TEST(LayoutTest, IndexAndEntryFieldsSitWhereReadersExpectThem) {
    EXPECT_EQ(sizeof(CopyHeader), layout::kCacheLine);
    EXPECT_EQ(offsetof(CopyHeader, revision), 0u);
    EXPECT_EQ(offsetof(CopyHeader, live_entries), 8u);
    EXPECT_EQ(offsetof(CopyHeader, used_slots), 16u);
    EXPECT_EQ(offsetof(CopyHeader, commit_ns), 24u);

    // Two 8-byte words, never one 16-byte atomic: that would be a cmpxchg16b, which
    // writes and faults on the readers' read-only mapping.
    EXPECT_EQ(sizeof(Slot), 16u);
    EXPECT_EQ(offsetof(Slot, hash), 0u);
    EXPECT_EQ(offsetof(Slot, offset), 8u);
    EXPECT_TRUE(std::atomic_ref<std::uint64_t>::is_always_lock_free);
    EXPECT_TRUE(std::atomic_ref<std::uint32_t>::is_always_lock_free);

    EXPECT_EQ(sizeof(EntryHeader), 48u);
    EXPECT_EQ(sizeof(EntryHeader) % layout::kAlign, 0u);
    EXPECT_EQ(offsetof(EntryHeader, hash), 0u);
    EXPECT_EQ(offsetof(EntryHeader, revision), 8u);
    EXPECT_EQ(offsetof(EntryHeader, prev_offset), 16u);
    EXPECT_EQ(offsetof(EntryHeader, value_len), 24u);
    EXPECT_EQ(offsetof(EntryHeader, checksum), 32u);
    EXPECT_EQ(offsetof(EntryHeader, key_len), 40u);
    EXPECT_EQ(offsetof(EntryHeader, ns), 44u);
    EXPECT_EQ(offsetof(EntryHeader, flags), 45u);
    EXPECT_EQ(offsetof(EntryHeader, category_len), 46u);
    EXPECT_EQ(offsetof(EntryHeader, reserved), 47u);
}

// If this fails the layout changed: bump layout::kVersion, then update both numbers here.
TEST(LayoutTest, VersionAndFingerprintArePinned) {
    EXPECT_EQ(layout::kVersion, 1u);
    EXPECT_EQ(layout::kFingerprint, 0x24314100u);
    const auto expected = static_cast<std::uint32_t>(
        sizeof(SegmentHeader) ^ (sizeof(CopyHeader) << 8) ^ (sizeof(Slot) << 12) ^
        (sizeof(EntryHeader) << 16) ^ (offsetof(SegmentHeader, heartbeat_ns) << 20) ^
        (offsetof(EntryHeader, key_len) << 24));
    EXPECT_EQ(layout::kFingerprint, expected);
}

// The magic reads as text in a hex dump of the segment.
TEST(LayoutTest, MagicSpellsTheFormatName) {
    char bytes[sizeof(layout::kMagic)];
    std::memcpy(bytes, &layout::kMagic, sizeof bytes);
    EXPECT_EQ(std::string(bytes, sizeof bytes), "YUXICFG1");
}

TEST(LayoutTest, EntrySizeAlignsAndRejectsUndescribableLengths) {
    // header + key + category + value + NUL, rounded up to 8
    EXPECT_EQ(layout::entry_size(0, 0, 0), 56u);
    EXPECT_EQ(layout::entry_size(1, 0, 1), 56u);
    EXPECT_EQ(layout::entry_size(4, 3, 0), 56u);
    EXPECT_EQ(layout::entry_size(4, 3, 1), 64u);
    EXPECT_EQ(layout::entry_size(8, 0, 7), 64u);
    for (std::uint64_t n = 0; n < 100; ++n) {
        EXPECT_EQ(layout::entry_size(n, 0, n) % layout::kAlign, 0u);
        EXPECT_GE(layout::entry_size(n, 0, n), sizeof(EntryHeader) + 2 * n + 1);
    }
    EXPECT_NE(layout::entry_size(layout::kMaxKeyLen, layout::kMaxCategoryLen, layout::kMaxValueLen),
              0u);
    EXPECT_EQ(layout::entry_size(layout::kMaxKeyLen + 1, 0, 0), 0u);
    EXPECT_EQ(layout::entry_size(0, layout::kMaxCategoryLen + 1, 0), 0u);
    EXPECT_EQ(layout::entry_size(0, 0, layout::kMaxValueLen + 1), 0u);
    EXPECT_EQ(layout::entry_size(~0ULL, ~0ULL, ~0ULL), 0u);
    EXPECT_EQ(layout::align_up(0), 0u);
    EXPECT_EQ(layout::align_up(1), 8u);
    EXPECT_EQ(layout::align_up(8), 8u);
    EXPECT_EQ(layout::copy_bytes_for(16), sizeof(CopyHeader) + 16 * sizeof(Slot));
}

// Segments copied from a real writer's output and altered in one field.
class RejectionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = "yuxi-h1-layout-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name();
        WriterOptions options;
        options.name = base_;
        options.min_arena_bytes = 1 << 16;
        options.min_slots = 16;
        options.max_value_bytes = 4096;  // keeps the arena, and the file, small
        std::vector<Change> initial = {Change{Namespace::config, "top_k", "10", ""}};
        {
            auto w = SegmentWriter::create(options, initial, 1);
            std::ifstream in(detail::segment_path(base_), std::ios::binary);
            bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
        }
        ::unlink(detail::segment_path(base_).c_str());
        ::unlink(detail::lock_path(base_).c_str());
        ASSERT_GE(bytes_.size(), layout::kHeaderSize);
    }

    void TearDown() override { ::unlink(detail::segment_path(name_).c_str()); }

    // The bytes are not 64-byte aligned like a SegmentHeader, so fields go through memcpy.
    template <class T>
    T peek(std::size_t offset) const {
        T v;
        std::memcpy(&v, bytes_.data() + offset, sizeof v);
        return v;
    }
    template <class T>
    void poke(std::size_t offset, T v) {
        std::memcpy(bytes_.data() + offset, &v, sizeof v);
    }

    // Writes the bytes as segment `name_`, replacing what was there.
    void install() {
        name_ = base_ + "-copy";
        const std::string path = detail::segment_path(name_);
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_GE(fd, 0) << path;
        ASSERT_EQ(::write(fd, bytes_.data(), bytes_.size()), static_cast<ssize_t>(bytes_.size()));
        ::close(fd);
    }

    void expect_refused(SegmentError::Kind kind, const std::string& advice) {
        install();
        try {
            (void)Client::open(name_);
            ADD_FAILURE() << "the segment was accepted";
        } catch (const SegmentError& e) {
            EXPECT_EQ(e.kind(), kind) << e.what();
            EXPECT_NE(std::string(e.what()).find(advice), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(name_), std::string::npos) << e.what();
        }
    }

    std::string base_;
    std::string name_;
    std::vector<unsigned char> bytes_;
};

TEST_F(RejectionTest, UnalteredCopyIsAccepted) {
    install();
    auto c = Client::open(name_);
    EXPECT_EQ(c.get("top_k"), "10");
    EXPECT_EQ(c.revision(), 1u);
}

TEST_F(RejectionTest, WrongMagicIsNotASegment) {
    poke(offsetof(SegmentHeader, magic), layout::kMagic ^ 0xff);
    expect_refused(SegmentError::Kind::corrupt, "not a yuxi-config segment");
}

TEST_F(RejectionTest, NewerVersionAsksToUpgradeTheClient) {
    poke(offsetof(SegmentHeader, version), layout::kVersion + 1);
    expect_refused(SegmentError::Kind::incompatible, "upgrade the client");
}

TEST_F(RejectionTest, OlderVersionAsksToUpgradeTheAgent) {
    poke(offsetof(SegmentHeader, version), layout::kVersion - 1);
    expect_refused(SegmentError::Kind::incompatible, "upgrade the agent");
}

TEST_F(RejectionTest, OtherFingerprintAsksForOneRelease) {
    poke(offsetof(SegmentHeader, fingerprint), layout::kFingerprint ^ 1);
    expect_refused(SegmentError::Kind::incompatible, "rebuild the client and the agent");
}

TEST_F(RejectionTest, GeometryLargerThanTheFileIsCorrupt) {
    ASSERT_EQ(peek<std::uint64_t>(offsetof(SegmentHeader, total_size)), bytes_.size());
    poke<std::uint64_t>(offsetof(SegmentHeader, total_size), bytes_.size() + 4096);
    expect_refused(SegmentError::Kind::corrupt, "do not fit");
}

TEST_F(RejectionTest, EmptyFileIsCorrupt) {
    bytes_.clear();
    expect_refused(SegmentError::Kind::corrupt, "empty");
}

TEST_F(RejectionTest, FileSmallerThanTheHeaderIsCorrupt) {
    bytes_.resize(layout::kHeaderSize - 1);
    expect_refused(SegmentError::Kind::corrupt, "truncated");
}

}  // namespace
}  // namespace yuxi::config
