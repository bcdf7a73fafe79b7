// Whether the database still holds the history this agent applied: the check run on every
// new connection before catching up, so that a failover to a standby that lacked commits
// (asynchronous replication) is detected instead of served as truth.
//
// The agent remembers, for its newest applied transactions, each one's revision and the
// `changed_at` of its last log row (microseconds; a batch's commit_ns is the same value).
// On a new connection it reads those revisions' rows from the log. A revision the agent
// applied that the database has not (above the trim watermark), or has with another
// `changed_at` (a later write reused the number), means the database's history diverged
// from the agent's there: every revision from that one on is lost, and the agent must
// resync to the database's state, never merge the two. A revision at or below the trim
// watermark cannot be checked and is taken as matching; so is one whose time is unknown
// (loaded from a snapshot without a log row).
//
// Pure: the query's rows in, a verdict out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace yuxi::config::agent {

// One applied transaction: its revision and its last row's changed_at (0: unknown).
struct AppliedMark {
    std::uint64_t revision = 0;
    std::uint64_t changed_us = 0;
};

// The newest applied transactions, oldest first, at most kKeep of them.
class AppliedHistory {
  public:
    static constexpr std::size_t kKeep = 64;

    // A transaction applied on top of the others (a revision above the newest).
    void applied(std::uint64_t revision, std::uint64_t changed_us);
    // A snapshot replaced everything: only its own mark remains.
    void reset(std::uint64_t revision, std::uint64_t changed_us);
    void clear() noexcept { marks_.clear(); }

    const std::deque<AppliedMark>& marks() const noexcept { return marks_; }
    // The revisions to ask the database about, as a PostgreSQL array literal "{1,2,3}".
    std::string revisions_array() const;

  private:
    std::deque<AppliedMark> marks_;
};

// What the database says: its trim watermark, its newest revision, and the rows it has
// for the revisions asked (revision → changed_at in microseconds).
struct DatabaseHistory {
    std::uint64_t trimmed = 0;
    std::uint64_t head = 0;
    std::vector<AppliedMark> rows;
};

struct Rewind {
    std::uint64_t first_lost = 0;        // the first revision the database does not share
    std::uint64_t last_applied = 0;      // the agent's newest revision
    std::uint64_t database_head = 0;     // the database's newest revision now
    std::vector<std::uint64_t> applied;  // the lost revisions this agent had applied
    std::string describe() const;        // "revisions 45, 46 (45..47)" for the logs
};

// A rewind, or nothing if the database holds every checkable mark.
std::optional<Rewind> check_history(const AppliedHistory& history, const DatabaseHistory& db);

}  // namespace yuxi::config::agent
