// Detecting a rewound history (history_check.hpp).
#include "agent/postgres/history_check.hpp"

#include <algorithm>
#include <unordered_map>

namespace yuxi::config::agent {

void AppliedHistory::applied(std::uint64_t revision, std::uint64_t changed_us) {
    if (!marks_.empty() && revision <= marks_.back().revision) {
        reset(revision, changed_us);  // not on top: the history restarted
        return;
    }
    marks_.push_back({revision, changed_us});
    if (marks_.size() > kKeep) {
        marks_.pop_front();
    }
}

void AppliedHistory::reset(std::uint64_t revision, std::uint64_t changed_us) {
    marks_.clear();
    if (revision > 0) {
        marks_.push_back({revision, changed_us});
    }
}

std::string AppliedHistory::revisions_array() const {
    std::string out = "{";
    for (const AppliedMark& m : marks_) {
        if (out.size() > 1) {
            out += ',';
        }
        out += std::to_string(m.revision);
    }
    return out + "}";
}

std::string Rewind::describe() const {
    std::string out;
    constexpr std::size_t kShown = 20;
    for (std::size_t i = 0; i < applied.size() && i < kShown; ++i) {
        out += (i == 0 ? "" : ", ") + std::to_string(applied[i]);
    }
    if (applied.size() > kShown) {
        out += ", ... (" + std::to_string(applied.size()) + " in all)";
    }
    if (out.empty()) {
        out = "none known";
    }
    return "applied revision(s) " + out + "; every revision from " + std::to_string(first_lost) +
           " through " + std::to_string(last_applied) + " as applied here";
}

std::optional<Rewind> check_history(const AppliedHistory& history, const DatabaseHistory& db) {
    const auto& marks = history.marks();
    if (marks.empty()) {
        return std::nullopt;
    }
    std::unordered_map<std::uint64_t, std::uint64_t> rows;
    rows.reserve(db.rows.size());
    for (const AppliedMark& r : db.rows) {
        rows.emplace(r.revision, r.changed_us);
    }
    std::optional<std::uint64_t> first_lost;
    for (const AppliedMark& m : marks) {
        if (m.revision <= db.trimmed) {
            continue;  // trimmed: nothing left to compare with
        }
        const auto it = rows.find(m.revision);
        const bool missing = it == rows.end();
        if (missing || (m.changed_us != 0 && it->second != m.changed_us)) {
            first_lost = m.revision;
            break;
        }
    }
    const std::uint64_t newest = marks.back().revision;
    if (!first_lost && std::max(db.head, db.trimmed) < newest) {
        // Every mark checked out (all trimmed, say), yet the database is behind us.
        first_lost = std::max(db.head, db.trimmed) + 1;
    }
    if (!first_lost) {
        return std::nullopt;
    }
    Rewind r;
    // A lost transaction's rows start after the previous mark that survived.
    // Without a surviving mark before it, the database's own head bounds where it ends.
    r.first_lost = std::min(*first_lost, std::max(db.head, db.trimmed) + 1);
    for (auto it = marks.begin(); it != marks.end(); ++it) {
        if (it->revision == *first_lost && it != marks.begin()) {
            r.first_lost = std::prev(it)->revision + 1;
        }
        if (it->revision >= *first_lost) {
            r.applied.push_back(it->revision);
        }
    }
    r.last_applied = newest;
    r.database_head = db.head;
    return r;
}

}  // namespace yuxi::config::agent
