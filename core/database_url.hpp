// DATABASE_URL in the forms Yuxi-Know's deployments have, turned into libpq conninfo.
#pragma once

#include <string>
#include <string_view>

#include "core/decoded.hpp"

namespace yuxi::config {

// Turns `url` into a libpq connection string that libpq itself accepts (ports included,
// which libpq would only check when connecting). Accepts libpq URIs (postgresql://,
// postgres://, several hosts as h1:5432,h2:5432), SQLAlchemy URLs with a driver
// (postgresql+asyncpg://, +psycopg2, +psycopg, +pg8000 ...: the driver is dropped;
// asyncpg's `ssl=` query parameter becomes libpq's `sslmode=`), and libpq keyword=value
// strings ("host=... dbname=..."). Sets application_name to `application_name` unless the
// URL sets one. A refusal names the redacted URL and never quotes the password.
Decoded<std::string> database_conninfo(std::string_view url, std::string_view application_name);

// `url` with its password replaced by "***", for logs and error messages. Works on any
// input, parsable or not.
std::string redact_database_url(std::string_view url);

}  // namespace yuxi::config
