// Deduplication and limits of a batch, before either writer plans it.
#include "agent/segment/segment_batch.hpp"

#include <string>
#include <unordered_map>
#include <utility>

namespace yuxi::config::agent {

void dedupe(std::span<const Change> batch, const WriterOptions& options,
            std::vector<Rejected>& rejected, std::vector<const Change*>& out) {
    out.clear();
    out.reserve(batch.size());
    std::unordered_map<BatchKey, std::size_t, BatchKeyHash> index;
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
        if (batch.size() == 1) {
            out.push_back(&c);
            break;
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
