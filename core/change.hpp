// Change: one entry of a batch, the unit every source hands to the segment writer.
#pragma once

#include <optional>
#include <string>

#include "yuxi/config/layout.hpp"

namespace yuxi::config {

// One change of a batch. A batch is applied as one revision.
struct Change {
    Namespace ns = Namespace::config;
    std::string key;
    std::optional<std::string> value;  // JSON text; nothing means delete
    std::string category;
};

}  // namespace yuxi::config
