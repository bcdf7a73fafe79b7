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
#include "yuxi/config/detail/layout_v1.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config {
namespace {

using agent::Change;
using agent::SegmentWriter;
using agent::WriterOptions;
using layout::CopyHeader;
using layout::EntryHeader;
using layout::EntryTrailer;
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

    // One 8-byte word, loaded and stored whole: a plain move, never a cmpxchg16b, which
    // writes and faults on the readers' read-only mapping. Eight slots per cache line.
    EXPECT_EQ(sizeof(Slot), 8u);
    EXPECT_EQ(layout::kCacheLine / sizeof(Slot), 8u);
    EXPECT_TRUE(std::atomic_ref<std::uint64_t>::is_always_lock_free);
    EXPECT_TRUE(std::atomic_ref<std::uint32_t>::is_always_lock_free);
    EXPECT_EQ(layout::kOffsetBits, 40u);
    EXPECT_EQ(layout::slot_word(0xabcdef, 0x1234567890), 0xabcdef1234567890ULL);
    EXPECT_EQ(layout::slot_tag(0xabcdef0000000000ULL), 0xabcdefu);
    EXPECT_EQ(layout::slot_tag(0x000000ffffffffffULL), 1u);  // a tag is never 0

    // What a lookup checks and a read returns sits in the entry's first 32 bytes; the key
    // follows in the same cache line (entries start on one).
    EXPECT_EQ(layout::kEntryAlign, layout::kCacheLine);
    EXPECT_EQ(sizeof(EntryHeader), 32u);
    EXPECT_EQ(offsetof(EntryHeader, key_len), 0u);
    EXPECT_EQ(offsetof(EntryHeader, value_len), 4u);
    EXPECT_EQ(offsetof(EntryHeader, ns), 8u);
    EXPECT_EQ(offsetof(EntryHeader, flags), 9u);
    EXPECT_EQ(offsetof(EntryHeader, category_len), 10u);
    EXPECT_EQ(offsetof(EntryHeader, scalar_type), 11u);
    EXPECT_EQ(offsetof(EntryHeader, extra_len), 12u);
    EXPECT_EQ(offsetof(EntryHeader, scalar), 16u);
    EXPECT_EQ(offsetof(EntryHeader, revision), 24u);
    EXPECT_EQ(sizeof(EntryTrailer), 24u);
    EXPECT_EQ(offsetof(EntryTrailer, prev_offset), 0u);
    EXPECT_EQ(offsetof(EntryTrailer, hash), 8u);
    EXPECT_EQ(offsetof(EntryTrailer, checksum), 16u);
    EXPECT_EQ(static_cast<int>(layout::ScalarType::none), 0);
    EXPECT_EQ(static_cast<int>(layout::ScalarType::boolean), 1);
    EXPECT_EQ(static_cast<int>(layout::ScalarType::integer), 2);
    EXPECT_EQ(static_cast<int>(layout::ScalarType::real), 3);
    EXPECT_EQ(static_cast<int>(layout::ScalarType::string), 4);

    EXPECT_EQ(sizeof(layout::WaitersPage), 128u);
    EXPECT_EQ(offsetof(layout::WaitersPage, magic), 0u);
    EXPECT_EQ(offsetof(layout::WaitersPage, version), 8u);
    EXPECT_EQ(offsetof(layout::WaitersPage, sleep_until_ns), 64u);
}

// The previous release's layout, which this client still reads and the agent still
// writes (--segment-layout 1): frozen.
TEST(LayoutTest, LayoutOneIsFrozen) {
    namespace v1 = layout::v1;
    EXPECT_EQ(v1::kVersion, 1u);
    EXPECT_EQ(v1::kFingerprint, 0x24314100u);
    EXPECT_EQ(sizeof(v1::Slot), 16u);
    EXPECT_EQ(offsetof(v1::Slot, hash), 0u);
    EXPECT_EQ(offsetof(v1::Slot, offset), 8u);
    EXPECT_EQ(sizeof(v1::EntryHeader), 48u);
    EXPECT_EQ(offsetof(v1::EntryHeader, hash), 0u);
    EXPECT_EQ(offsetof(v1::EntryHeader, revision), 8u);
    EXPECT_EQ(offsetof(v1::EntryHeader, prev_offset), 16u);
    EXPECT_EQ(offsetof(v1::EntryHeader, value_len), 24u);
    EXPECT_EQ(offsetof(v1::EntryHeader, checksum), 32u);
    EXPECT_EQ(offsetof(v1::EntryHeader, key_len), 40u);
    EXPECT_EQ(offsetof(v1::EntryHeader, ns), 44u);
    EXPECT_EQ(offsetof(v1::EntryHeader, flags), 45u);
    EXPECT_EQ(offsetof(v1::EntryHeader, category_len), 46u);
    EXPECT_EQ(offsetof(v1::EntryHeader, reserved), 47u);
    EXPECT_EQ(v1::entry_size(0, 0, 0), 56u);
    EXPECT_EQ(v1::entry_size(4, 3, 1), 64u);
    EXPECT_EQ(v1::copy_bytes_for(16), sizeof(CopyHeader) + 16 * sizeof(v1::Slot));
}

// If this fails the layout changed: bump layout::kVersion, then update both numbers here.
TEST(LayoutTest, VersionAndFingerprintArePinned) {
    EXPECT_EQ(layout::kVersion, 2u);
    EXPECT_EQ(layout::kFingerprint, 0x7420c1a8u);
    const auto expected = static_cast<std::uint32_t>(
        sizeof(SegmentHeader) ^ (sizeof(CopyHeader) << 8) ^ (sizeof(Slot) << 12) ^
        (sizeof(EntryHeader) << 16) ^ (offsetof(SegmentHeader, heartbeat_ns) << 20) ^
        (offsetof(EntryHeader, revision) << 24) ^ (sizeof(layout::EntryTrailer) << 26) ^
        (layout::kEntryAlign << 1) ^ layout::kOffsetBits);
    EXPECT_EQ(layout::kFingerprint, expected);
    EXPECT_NE(layout::kFingerprint, layout::v1::kFingerprint);
}

// The magic reads as text in a hex dump of the segment.
TEST(LayoutTest, MagicSpellsTheFormatName) {
    char bytes[sizeof(layout::kMagic)];
    std::memcpy(bytes, &layout::kMagic, sizeof bytes);
    EXPECT_EQ(std::string(bytes, sizeof bytes), "YUXICFG1");
}

TEST(LayoutTest, EntrySizeAlignsAndRejectsUndescribableLengths) {
    // header + key + category + value + NUL + extra, to 8, + trailer, to 64
    EXPECT_EQ(layout::entry_size(0, 0, 0), 64u);
    EXPECT_EQ(layout::entry_size(5, 0, 2), 64u);  // "top_k": 10
    EXPECT_EQ(layout::entry_size(4, 3, 1), 128u);
    EXPECT_EQ(layout::entry_size(20, 0, 100), 192u);
    EXPECT_EQ(layout::entry_size(20, 0, 100, 99), 320u);
    EXPECT_EQ(layout::trailer_at(5, 0, 2, 0), 40u);
    EXPECT_EQ(layout::trailer_at(4, 3, 1, 0), 48u);
    for (std::uint64_t n = 0; n < 100; ++n) {
        EXPECT_EQ(layout::entry_size(n, 0, n) % layout::kEntryAlign, 0u);
        EXPECT_GE(layout::entry_size(n, 0, n),
                  sizeof(EntryHeader) + 2 * n + 1 + sizeof(layout::EntryTrailer));
        EXPECT_EQ(layout::trailer_at(n, 0, n, 0) % 8, 0u);
    }
    EXPECT_NE(layout::entry_size(layout::kMaxKeyLen, layout::kMaxCategoryLen, layout::kMaxValueLen),
              0u);
    EXPECT_EQ(layout::entry_size(layout::kMaxKeyLen + 1, 0, 0), 0u);
    EXPECT_EQ(layout::entry_size(0, layout::kMaxCategoryLen + 1, 0), 0u);
    EXPECT_EQ(layout::entry_size(0, 0, layout::kMaxValueLen + 1), 0u);
    EXPECT_EQ(layout::entry_size(0, 0, 0, layout::kMaxValueLen + 1), 0u);
    EXPECT_EQ(layout::entry_size(~0ULL, ~0ULL, ~0ULL), 0u);
    EXPECT_EQ(layout::align_up(0, 64), 0u);
    EXPECT_EQ(layout::align_up(1, 64), 64u);
    EXPECT_EQ(layout::align_up(64, 64), 64u);
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
        ::unlink(detail::waiters_path(base_).c_str());
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

// Version 1 is read (see cross_version_test); anything older is not.
TEST_F(RejectionTest, OlderVersionAsksToUpgradeTheAgent) {
    poke(offsetof(SegmentHeader, version), std::uint32_t{0});
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
