// What database mode lets into the segment (the xDS rule): a batch is applied except the
// values that are refused, whose keys keep their last good value (or stay absent), and every
// refusal is remembered with its revision and reason until a later value of that key is
// accepted. Every path (a PostgreSQL transaction or snapshot, a Redis batch, the L2
// snapshot) passes here, so the relay and its followers refuse the same values.
//
// Refused: a value over --max-value-bytes, a value that is not JSON within the agent's
// limits, and a value that breaks its key's JSON Schema (core/value_schema.hpp). The schemas
// come with the data, as the metadata document kValueSchemasKey: a batch that changes them
// is checked with its new schemas; a schema document that cannot be compiled is itself
// refused (the last good schemas stay). Deletions are never refused.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "agent/segment/segment_writer.hpp"
#include "core/agent_report.hpp"
#include "core/change.hpp"
#include "core/value_schema.hpp"

namespace yuxi::config::agent {

class Admission {
  public:
    explicit Admission(std::uint64_t max_value_bytes) : max_value_bytes_(max_value_bytes) {}

    // The changes to apply at `revision`: the last change of each key (unless `snapshot`:
    // then each key comes once, and a key absent from it is forgotten), without the refused.
    std::vector<Change> admit(std::vector<Change>&& changes, std::uint64_t revision, bool snapshot);
    // Keys the segment writer refused (it names them without their namespace).
    void segment_refused(const std::vector<Rejected>& rejected, std::uint64_t revision);

    bool clean() const noexcept { return refused_.empty(); }
    std::size_t size() const noexcept { return reported_; }
    // The key is held back (not the database's value).
    bool holds_back(const std::string& id) const { return refused_.contains(id); }

    // For the agents' report: the newest refusals, at most `max`.
    std::vector<ValueRejection> newest(std::size_t max) const;
    // Refusals since start, by reason: schema, too_large, not_json, segment.
    const std::map<std::string, std::uint64_t, std::less<>>& counts() const noexcept {
        return counts_;
    }
    std::uint64_t total() const noexcept;

    // The identity of an entry as one string: the namespace byte, then the key.
    static std::string id(Namespace ns, std::string_view key);

  private:
    struct Entry {
        ValueRejection rejection;
        bool reported = true;  // false: the shadow of a segment refusal in the other namespace
    };
    void refuse(Namespace ns, const std::string& key, std::uint64_t revision,
                std::string_view reason, const std::string& why);
    void accept(Namespace ns, const std::string& key);
    // Applies a change of the schema document; false if it is refused.
    bool take_schemas(const Change& c, std::uint64_t revision);

    std::uint64_t max_value_bytes_;
    ValueSchemas schemas_;
    std::unordered_map<std::string, Entry> refused_;
    std::size_t reported_ = 0;
    std::map<std::string, std::uint64_t, std::less<>> counts_;
};

}  // namespace yuxi::config::agent
