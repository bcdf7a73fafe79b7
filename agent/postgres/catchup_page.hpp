// The catch-up query's reply as data: one watermark row (revision NULL: the log's trim
// watermark and head) and the page of the change log after a revision. Pure: no libpq,
// so that every reply the server (or anyone between us and it) could send is a unit
// test and a fuzz input; postgres_source.cpp hands it the rows' fields as text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/change.hpp"
#include "core/decoded.hpp"

namespace yuxi::config::agent {

// Columns of the catch-up query, in order.
enum CatchupColumn : int {
    kRevision = 0,
    kNamespace,
    kKey,
    kOp,
    kValue,
    kCategory,
    kChangedUs,
    kTx,
    kTrimmed,
    kHead,
    kCatchupColumns
};

// One row's fields as text; nothing for SQL NULL.
using CatchupRow = std::array<std::optional<std::string_view>, kCatchupColumns>;

// A log row read by a catch-up.
struct LogRow {
    std::uint64_t revision = 0;
    std::uint64_t changed_us = 0;
    std::string tx;  // xmin of the row: its transaction
    Change change;
};

struct CatchupPage {
    std::uint64_t trimmed = 0;  // rows through this revision were trimmed
    std::uint64_t head = 0;     // the log's greatest revision
    std::vector<LogRow> rows;   // sorted by revision
};

// The page, or why the reply is not one (a missing watermark, a malformed row).
Decoded<CatchupPage> decode_catchup_page(const std::vector<CatchupRow>& rows);

// The revision a NOTIFY yuxi_config payload announces, or nothing if it is not one: the
// payload is a hint (anyone allowed to NOTIFY may send it), never data.
std::optional<std::uint64_t> notify_revision(std::string_view payload) noexcept;

}  // namespace yuxi::config::agent
