// The checks value_schema.hpp runs around Valijson: what a schema may contain before it is
// compiled, and what a value may hold before it is validated. Internal to core.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>

#include "core/decoded.hpp"
#include "core/value_schema.hpp"

namespace yuxi::config {

// What a schema uses that bounds the values it may be run on.
struct SchemaTraits {
    bool uses_regex = false;   // pattern, patternProperties or format (std::regex)
    bool uses_unique = false;  // uniqueItems
};

// Walks a parsed schema: local references only, resolvable; no $id below the root; no
// reference cycle that stays on the same value; regular expressions std::regex accepts.
// Recursion is bounded by the document's depth; references are followed by a work list.
Decoded<SchemaTraits> inspect_schema(const nlohmann::json& schema);

// A string (or object key) too long for a regex check, or an array too long for
// uniqueItems, where `traits` says the schema needs them. Walks without recursion.
std::optional<Violation> check_value_shape(const nlohmann::json& value, const SchemaTraits& traits);

}  // namespace yuxi::config
