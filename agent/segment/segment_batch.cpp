// Deduplication and limits of a batch, before either writer plans it.
#include "agent/segment/segment_batch.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <utility>

namespace yuxi::config::agent {
namespace {

// Batches up to this size are deduplicated by a scan of what is kept so far.
constexpr std::size_t kSmallBatch = 32;

}  // namespace

void dedupe(std::span<const Change> batch, const WriterOptions& options,
            std::vector<Rejected>& rejected, std::vector<const Change*>& out) {
    out.clear();
    out.reserve(batch.size());
    std::unordered_map<BatchKey, std::size_t, BatchKeyHash> index;  // large batches only
    for (const Change& c : batch) {
        std::string reason;
        if (c.key.empty() || c.key.size() > layout::kMaxKeyLen) {
            reason = "key length " + std::to_string(c.key.size()) + " outside 1.." +
                     std::to_string(layout::kMaxKeyLen);
        } else if (c.category.size() > layout::kMaxCategoryLen) {
            reason = "category longer than " + std::to_string(layout::kMaxCategoryLen) + " bytes";
        } else if (c.value && c.value->size() > options.max_value_bytes) {
            reason = "value of " + std::to_string(c.value->size()) +
                     " bytes exceeds the limit of " + std::to_string(options.max_value_bytes) +
                     " (--max-value-bytes)";
        }
        if (!reason.empty()) {
            rejected.push_back({c.key, std::move(reason)});
            continue;
        }
        if (batch.size() <= kSmallBatch) {
            // A scan allocates nothing and, for a transaction's handful of rows, costs less
            // than hashing every key into a map.
            const Change** same =
                std::find_if(out.data(), out.data() + out.size(),
                             [&c](const Change* o) { return o->key == c.key && o->ns == c.ns; });
            if (same == out.data() + out.size()) {
                out.push_back(&c);
            } else {
                *same = &c;
            }
            continue;
        }
        auto [it, inserted] = index.try_emplace(BatchKey{c.ns, c.key}, out.size());
        if (inserted) {
            out.push_back(&c);
        } else {
            out[it->second] = &c;
        }
    }
}

}  // namespace yuxi::config::agent
