// What yuxi-configctl's database and Redis commands share: the admin library opened from
// a request's flags, the exit status of each AdminError kind, and JSON strings for output.
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

#include "admin/connection.hpp"
#include "cli/requests.hpp"
#include "yuxi/config/admin.hpp"

namespace yuxi::config::cli {

// Redis from REDIS_* with the flags over them. Throws UsageError.
RedisEndpoint redis_endpoint(const RedisFlags& flags);
// How the agents' reports are verified, from --signing-key-file and --insecure-redis (the
// rest from the environment, as the admin library reads it).
FleetTrust fleet_trust(const RedisFlags& flags);

// The admin library on the request's database (UsageError if none is configured; the
// AdminError of a failed connection otherwise). `wait` sets the Redis side and the stale
// limit for --wait-all.
Admin open_admin(const DatabaseFlags& db, const WaitFlags* wait = nullptr);

Exit exit_of(AdminError::Kind kind) noexcept;

// The bytes of the file `path` (- for standard input); a CommandError (usage) naming it if
// it cannot be read, saying that nothing was written.
std::string read_input(const std::string& path);

// The request's database for the commands that reach it without the admin library
// (schema, migrate's reads, export, agents). Throws UsageError if none is configured.
admin::DatabaseTarget database_target(const DatabaseFlags& db);

// `s` as a JSON string literal (invalid UTF-8 replaced, so the output stays JSON).
std::string quote(std::string_view s);

// --wait and --wait-all around a write: checked before it (a segment that cannot be opened
// or a Redis that does not answer fails the command with nothing written), waited for after.
class Waits {
  public:
    Waits(Admin& admin, const DatabaseFlags& db, const WaitFlags& flags);
    // After the write at `revision`: Exit::ok, or the exit of a wait that failed (told on
    // `err`, saying that the write is committed).
    Exit finish(std::uint64_t revision, std::ostream& err);

  private:
    Admin& admin_;
    WaitFlags flags_;
};

}  // namespace yuxi::config::cli
