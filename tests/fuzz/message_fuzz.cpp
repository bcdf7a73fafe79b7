// libFuzzer target for the relay's Redis documents: whatever arrives on the channel, in
// the stream or as the L2 snapshot (any client of the Redis can write there), decoding
// must refuse it or return a document that survives a round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "change_message.hpp"

namespace {

using namespace yuxi::config::agent;

void check_batch(std::string_view text) {
    auto decoded = decode_batch(text);
    if (const auto* b = std::get_if<Batch>(&decoded)) {
        if (b->prev >= b->revision) {
            std::abort();  // decode_batch promises prev < revision
        }
        auto again = decode_batch(encode_batch(*b));
        const auto* b2 = std::get_if<Batch>(&again);
        if (b2 == nullptr || b2->revision != b->revision || b2->prev != b->prev ||
            b2->entries.size() != b->entries.size()) {
            std::abort();
        }
        for (std::size_t i = 0; i < b->entries.size(); ++i) {
            if (b2->entries[i].key != b->entries[i].key ||
                b2->entries[i].value != b->entries[i].value) {
                std::abort();
            }
        }
    }
}

void check_snapshot(std::string_view text) {
    auto decoded = decode_snapshot(text);
    if (const auto* s = std::get_if<L2Snapshot>(&decoded)) {
        auto again = decode_snapshot(encode_snapshot(*s));
        const auto* s2 = std::get_if<L2Snapshot>(&again);
        if (s2 == nullptr || s2->revision != s->revision ||
            s2->entries.size() != s->entries.size()) {
            std::abort();
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_batch(text);
    check_snapshot(text);
    return 0;
}
