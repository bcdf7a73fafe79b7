// The relay's Redis documents: what goes out comes back the same, and nothing foreign,
// truncated or altered is ever taken for ours.
#include "core/change_message.hpp"

#include <gtest/gtest.h>

namespace yuxi::config {
namespace {

Batch sample_batch() {
    Batch b;
    b.revision = 42;
    b.prev = 40;
    b.commit_ns = 1700000000123456789ULL;
    b.fence = 7;
    b.entries = {
        {Namespace::config, "llm.model", std::string(R"({"b": 1, "a": [1.50, "x"]})"), "models"},
        {Namespace::metadata, "global_metadata", std::nullopt, ""},
        {Namespace::config, "unicode.键", std::string(R"("值\n\"q\"")"), ""}};
    return b;
}

TEST(ChangeMessageTest, BatchRoundTripKeepsValueBytes) {
    const Batch in = sample_batch();
    auto out = decode_batch(encode_batch(in));
    ASSERT_TRUE(out) << out.reason();
    const Batch& b = *out;
    EXPECT_EQ(b.revision, 42u);
    EXPECT_EQ(b.prev, 40u);
    EXPECT_EQ(b.commit_ns, in.commit_ns);
    EXPECT_EQ(b.fence, 7u);
    EXPECT_FALSE(b.wakeup);
    ASSERT_EQ(b.entries.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(b.entries[i].ns, in.entries[i].ns);
        EXPECT_EQ(b.entries[i].key, in.entries[i].key);
        EXPECT_EQ(b.entries[i].value, in.entries[i].value);  // byte for byte: "1.50" stays
        EXPECT_EQ(b.entries[i].category, in.entries[i].category);
    }
}

TEST(ChangeMessageTest, WakeUpHasNoEntries) {
    Batch in = sample_batch();
    in.wakeup = true;
    const std::string text = encode_batch(in);
    EXPECT_EQ(text.find("entries"), std::string::npos);
    auto out = decode_batch(text);
    ASSERT_TRUE(out) << out.reason();
    EXPECT_TRUE(out->wakeup);
    EXPECT_EQ(out->revision, 42u);
}

TEST(ChangeMessageTest, ForeignOrBrokenBatchesAreRefusedWithAReason) {
    for (
        const char* text :
        {"", "garbage", "[]", R"({"revision":2,"prev":1})", R"({"v":2,"revision":2,"prev":1})",
         R"({"v":1,"revision":2})", R"({"v":1,"revision":2,"prev":2})",
         R"({"v":1,"revision":-2,"prev":1})", R"({"v":1,"revision":2,"prev":1,"entries":{}})",
         R"({"v":1,"revision":2,"prev":1,"entries":[{"ns":"x","key":"k","op":"D"}]})",
         R"({"v":1,"revision":2,"prev":1,"entries":[{"ns":"config","key":"","op":"D"}]})",
         R"({"v":1,"revision":2,"prev":1,"entries":[{"ns":"config","key":"k","op":"U"}]})",
         R"({"v":1,"revision":2,"prev":1,"entries":[{"ns":"config","key":"k","op":"X"}]})",
         R"({"v":1,"revision":2,"prev":1,"entries":[{"ns":"config","key":"k","op":"U","value":3}]})"}) {
        auto out = decode_batch(text);
        ASSERT_FALSE(out) << text;
        EXPECT_FALSE(out.reason().empty()) << text;
    }
    auto v2 = decode_batch(R"({"v":2,"revision":2,"prev":1})");
    EXPECT_NE(v2.reason().find("version 2"), std::string::npos);
}

TEST(ChangeMessageTest, SnapshotRoundTripAndChecksum) {
    L2Snapshot in;
    in.revision = 99;
    in.entries = {{Namespace::config, "a", std::string("1"), "basic"},
                  {Namespace::metadata, "m", std::string(R"({"kb": []})"), ""}};
    const std::string text = encode_snapshot(in);
    auto out = decode_snapshot(text);
    ASSERT_TRUE(out) << out.reason();
    EXPECT_EQ(out->revision, 99u);
    ASSERT_EQ(out->entries.size(), 2u);
    EXPECT_EQ(out->entries[1].value, in.entries[1].value);

    // Any altered value, a dropped entry, or a truncation is caught.
    std::string altered = text;
    altered.replace(altered.find(R"(\"kb\")"), 6, R"(\"KB\")");
    EXPECT_FALSE(decode_snapshot(altered));
    EXPECT_FALSE(decode_snapshot(text.substr(0, text.size() / 2)));
    L2Snapshot fewer = in;
    fewer.entries.pop_back();
    std::string swapped = encode_snapshot(fewer);
    swapped.replace(swapped.find("\"checksum\":\"") + 12, 16, snapshot_checksum(in.entries));
    EXPECT_FALSE(decode_snapshot(swapped));
    EXPECT_FALSE(decode_snapshot(R"({"v":2,"revision":5})"));
}

TEST(ChangeMessageTest, ChecksumDependsOnEveryField) {
    const std::vector<Change> base = {{Namespace::config, "a", std::string("1"), "c"}};
    const std::string h = snapshot_checksum(base);
    EXPECT_EQ(h.size(), 16u);
    auto with = [&](auto&& edit) {
        std::vector<Change> v = base;
        edit(v[0]);
        return snapshot_checksum(v);
    };
    EXPECT_NE(h, with([](Change& c) { c.ns = Namespace::metadata; }));
    EXPECT_NE(h, with([](Change& c) { c.key = "b"; }));
    EXPECT_NE(h, with([](Change& c) { c.value = "2"; }));
    EXPECT_NE(h, with([](Change& c) { c.category = "d"; }));
    // Moving bytes between fields changes it too.
    EXPECT_NE(snapshot_checksum({{Namespace::config, "ab", std::string("c"), ""}}),
              snapshot_checksum({{Namespace::config, "a", std::string("bc"), ""}}));
}

}  // namespace
}  // namespace yuxi::config
