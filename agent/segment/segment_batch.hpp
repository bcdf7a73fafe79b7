// A batch as the segment writers see it: keys for deduplication, and the limits.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "agent/segment/segment_types.hpp"
#include "yuxi/config/detail/hash.hpp"

namespace yuxi::config::agent {

// A key of a batch: namespace and key, for deduplication.
struct BatchKey {
    Namespace ns;
    std::string_view key;
    bool operator==(const BatchKey&) const = default;
};

struct BatchKeyHash {
    std::size_t operator()(const BatchKey& k) const noexcept {
        return detail::key_hash(k.ns, k.key);
    }
};

// The last change of each key, in first-seen order, minus those the limits refuse (listed
// in `rejected`).
void dedupe(std::span<const Change> batch, const WriterOptions& options,
            std::vector<Rejected>& rejected, std::vector<const Change*>& out);

}  // namespace yuxi::config::agent
