// DATABASE_URL in the forms Yuxi-Know's deployments have, turned into libpq conninfo.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace yuxi::config::agent {

// A DATABASE_URL that cannot be used; the message never contains the password.
class DatabaseUrlError : public std::invalid_argument {
  public:
    using std::invalid_argument::invalid_argument;
};

// Turns `url` into a libpq connection string. Accepts libpq URIs (postgresql://,
// postgres://), SQLAlchemy URLs with a driver (postgresql+asyncpg://, +psycopg2, +psycopg,
// +pg8000 ...: the driver is dropped; asyncpg's `ssl=` query parameter becomes libpq's
// `sslmode=`), and libpq keyword=value strings ("host=... dbname=..."). Sets
// application_name to `application_name` unless the URL sets one. Throws
// DatabaseUrlError for anything else.
std::string to_libpq_conninfo(std::string_view url, std::string_view application_name);

// `url` with its password replaced by "***", for logs and error messages. Works on any
// input, parsable or not.
std::string redact_database_url(std::string_view url);

}  // namespace yuxi::config::agent
