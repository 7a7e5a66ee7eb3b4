#pragma once

#include <chrono>
#include <string>

#include "config/config.h"

namespace praefect::datastore::postgres {

// A libpq keyword/value connection string for one [database] connection.
// Unset fields are left out, so libpq's defaults and PG* environment
// variables apply, except sslmode, which defaults to "prefer" as in Praefect.
// `host` may be a socket directory (a path starting with '/').
// connect_timeout is rounded up to whole seconds (libpq's unit; at least 2,
// libpq's minimum). Values are quoted as libpq requires.
std::string ConnString(const config::DatabaseConnection& c, std::chrono::milliseconds connect_timeout);

// The same string with the password replaced by "***", for messages.
std::string RedactedConnString(const config::DatabaseConnection& c, std::chrono::milliseconds connect_timeout);

}  // namespace praefect::datastore::postgres
