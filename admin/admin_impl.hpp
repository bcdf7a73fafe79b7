// Admin's state, shared by the files that implement it (admin.cpp, rollback.cpp,
// value_schemas.cpp). Internal to the admin library.
#pragma once

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string_view>

#include "admin/connection.hpp"
#include "core/value_schema.hpp"
#include "yuxi/config/admin.hpp"
#include "yuxi/config/client.hpp"

namespace yuxi::config {

struct Admin::Impl {
    explicit Impl(AdminOptions o);
    ~Impl();

    // The schemas of the database, with the version yuxi_config_write checks: loaded on
    // the first write and again whenever a write finds them changed.
    void load_schemas();
    const ValueSchemas& current_schemas();
    // `text` parsed, within the agents' limits, and valid under its key's schema; throws
    // AdminError usage or InvalidValueError.
    nlohmann::json checked_value(bool metadata, std::string_view key, std::string_view text);

    WriteResult write_one(std::string_view key, const std::optional<std::string_view>& text,
                          const WriteOptions& options);
    // `exact_categories`: a write without a category clears it (a rollback restores what
    // the log says), instead of keeping the key's.
    WriteResult write_many(const std::vector<Write>& writes, bool exact_categories = false);
    admin::Connection& connection();
    void put_schemas(const std::vector<SchemaRule>& added, bool force);

    AdminOptions options;
    admin::DatabaseTarget target;
    std::unique_ptr<admin::Connection> db;
    ValueSchemas schemas;
    std::uint64_t schemas_version = 0;
    bool schemas_loaded = false;
    std::optional<Client> segment;
    std::optional<Fleet> fleet;
};

}  // namespace yuxi::config
