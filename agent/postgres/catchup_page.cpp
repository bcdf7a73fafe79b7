// Decoding the catch-up query's reply.
#include "agent/postgres/catchup_page.hpp"

#include <algorithm>

#include "core/change_message.hpp"
#include "core/text.hpp"
#include "yuxi/config/layout.hpp"

namespace yuxi::config::agent {
namespace {

std::optional<std::uint64_t> revision_of(const std::optional<std::string_view>& f) {
    const auto n = f ? parse_u64(*f) : std::nullopt;
    return n && *n <= kMaxRevision ? n : std::nullopt;
}

Decoded<LogRow> row_from(const CatchupRow& r) {
    const auto revision = revision_of(r[kRevision]);
    const std::optional<std::int64_t> changed_us = parse_i64(r[kChangedUs].value_or(""));
    const std::string_view ns = r[kNamespace].value_or("");
    const std::string_view op = r[kOp].value_or("");
    const std::string_view key = r[kKey].value_or("");
    const std::string shown = revision ? std::to_string(*revision) : "?";
    if (!revision || *revision == 0 || !changed_us || (ns != "config" && ns != "metadata") ||
        (op != "U" && op != "D") || (op == "U" && !r[kValue]) || !r[kTx]) {
        return refuse("malformed log row at revision " + shown);
    }
    if (key.empty() || key.size() > layout::kMaxKeyLen ||
        r[kCategory].value_or("").size() > layout::kMaxCategoryLen) {
        return refuse("log row at revision " + shown + ": key or category outside the limits");
    }
    LogRow row;
    row.revision = *revision;
    row.changed_us = *changed_us > 0 ? static_cast<std::uint64_t>(*changed_us) : 0;
    row.tx = std::string(*r[kTx]);
    row.change.ns = ns == "config" ? Namespace::config : Namespace::metadata;
    row.change.key = std::string(key);
    if (op == "U") {
        row.change.value = std::string(*r[kValue]);
        row.change.category = std::string(r[kCategory].value_or(""));
    }
    return row;
}

}  // namespace

Decoded<CatchupPage> decode_catchup_page(const std::vector<CatchupRow>& rows) {
    CatchupPage page;
    bool watermark = false;
    page.rows.reserve(rows.size());
    for (const CatchupRow& r : rows) {
        if (!r[kRevision]) {
            const auto trimmed = revision_of(r[kTrimmed]);
            const auto head = revision_of(r[kHead]);
            if (!trimmed || !head || watermark) {
                return refuse("a malformed or second watermark row");
            }
            page.trimmed = *trimmed;
            page.head = *head;
            watermark = true;
            continue;
        }
        auto row = row_from(r);
        if (!row) {
            return refuse(row.reason());
        }
        page.rows.push_back(std::move(*row));
    }
    if (!watermark) {
        return refuse("no watermark row in the reply");
    }
    // UNION ALL gives no order in principle (in practice the page comes as the index
    // returned it): make sure.
    const auto by_revision = [](const LogRow& a, const LogRow& b) {
        return a.revision < b.revision;
    };
    if (!std::is_sorted(page.rows.begin(), page.rows.end(), by_revision)) {
        std::sort(page.rows.begin(), page.rows.end(), by_revision);
    }
    const auto dup = std::adjacent_find(
        page.rows.begin(), page.rows.end(),
        [](const LogRow& a, const LogRow& b) { return a.revision == b.revision; });
    if (dup != page.rows.end()) {
        return refuse("revision " + std::to_string(dup->revision) + " appears twice");
    }
    return page;
}

std::optional<std::uint64_t> notify_revision(std::string_view payload) noexcept {
    const auto n = parse_u64(payload);
    return n && *n > 0 && *n <= kMaxRevision ? n : std::nullopt;
}

}  // namespace yuxi::config::agent
