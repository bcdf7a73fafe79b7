// Categories of config keys, after the field groups of Yuxi-Know's Config class.
#include <array>
#include <utility>

#include "yuxi/config/admin.hpp"

namespace yuxi::config {
namespace {

// The fields Yuxi-Know's Config persists in base.toml (v0.4 to v0.6), by group.
constexpr std::array<std::pair<std::string_view, std::string_view>, 14> kFields = {{
    {"save_dir", "basic"},
    {"model_dir", "basic"},
    {"enable_reranker", "features"},
    {"enable_content_guard", "features"},
    {"enable_content_guard_llm", "features"},
    {"enable_web_search", "features"},
    {"default_model", "models"},
    {"fast_model", "models"},
    {"embed_model", "models"},
    {"reranker", "models"},
    {"content_guard_llm_model", "models"},
    {"model_names", "models"},
    {"default_agent_id", "agents"},
    {"sandbox_provider", "sandbox"},
}};

// Fields added by later versions follow their group's prefix.
constexpr std::array<std::pair<std::string_view, std::string_view>, 2> kPrefixes = {{
    {"enable_", "features"},
    {"sandbox_", "sandbox"},
}};

}  // namespace

std::optional<std::string> default_category(std::string_view key) {
    for (const auto& [field, category] : kFields) {
        if (key == field) {
            return std::string(category);
        }
    }
    for (const auto& [prefix, category] : kPrefixes) {
        if (key.starts_with(prefix)) {
            return std::string(category);
        }
    }
    return std::nullopt;
}

}  // namespace yuxi::config
