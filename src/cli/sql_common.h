#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/subcommand.h"
#include "common/status_or.h"
#include "config/config.h"
#include "datastore/postgres/connection.h"

namespace praefect::cli {

// What the sql-* subcommands share: the configuration and one connection to
// [database] (Praefect's openDB).

// "praefect <name>", the prefix of their lines.
std::string SqlCommandName(std::string_view name);

// Loads -config for subcommand `name`; prints the problems (or that -config
// is missing) to inv.err and returns nullopt when it cannot be used.
std::optional<config::Config> LoadConfigForSql(const Invocation& inv, std::string_view name);

// One connection to the main database, within `timeout` for the dial.
StatusOr<std::unique_ptr<datastore::postgres::Connection>> OpenDatabase(const config::Config& config,
                                                                        std::chrono::milliseconds timeout);

// One connection for a session-level lock (the migrator's
// pg_advisory_lock): [database.session_pooled] with its fallbacks, as the
// LISTEN connection. Through a transaction-pooling PgBouncer ([database]),
// the lock and its unlock could run on different server connections, and
// the lock would stay held there, blocking every later sql-migrate.
StatusOr<std::unique_ptr<datastore::postgres::Connection>> OpenSessionDatabase(const config::Config& config,
                                                                               std::chrono::milliseconds timeout);

// Prints "praefect <name>: fail: <message>" to inv.err; returns exit status 1.
int SqlFail(const Invocation& inv, std::string_view name, const Status& st);

// Go flag syntax for a boolean flag: -name, --name, -name=true|false.
// Returns true and sets *value when `arg` is that flag; sets *bad when the
// value is not a boolean.
bool ParseBoolFlag(std::string_view arg, std::string_view name, bool* value, bool* bad);

}  // namespace praefect::cli
