#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/status_or.h"
#include "config/config.h"
#include "datastore/postgres/connection.h"
#include "datastore/postgres/migrations.h"

namespace praefect::datastore::postgres {

// The advisory lock key every migration run (and schema check) takes, so
// that postinst, an operator and a starting praefect never migrate at once.
// The same number in every praefect version: "praefect" in ASCII.
inline constexpr int64_t kMigrationLockKey = 0x7072616566656374;

// One row of sql-migrate-status.
struct MigrationState {
  std::string id;
  bool applied = false;
  bool unknown = false;     // applied in the database, not known to this binary
  std::string applied_at;   // "2006-01-02 15:04:05.999999 +0000 UTC" when applied
};

// Applies and rolls back the schema migrations over one connection, which
// must outlive the Migrator. Each migration runs in its own transaction and
// is recorded in schema_migrations (id, applied_at); every run holds
// pg_advisory_lock(kMigrationLockKey) throughout. Not thread-safe.
class Migrator {
 public:
  enum class Event { kMigrating, kApplied, kRolledBack };
  // Called before and after each migration (for sql-migrate's lines).
  using Progress = std::function<void(Event, const Migration&, std::chrono::nanoseconds took)>;

  Migrator(Connection* conn, std::vector<Migration> migrations, Deadline deadline)
      : conn_(conn), migrations_(std::move(migrations)), deadline_(deadline) {}

  // The migrations that Apply would run, in order.
  StatusOr<std::vector<Migration>> Pending();
  // Called once Apply holds the lock, with what it is about to apply (so
  // a run that waited for another one reports what is left, not what was).
  using Plan = std::function<void(const std::vector<Migration>&)>;

  // Applies every pending migration, in id order; returns the ids applied.
  // Unless `ignore_unknown`, FAILED_PRECONDITION when the database has
  // migrations this binary does not know (a newer praefect applied them).
  StatusOr<std::vector<std::string>> Apply(bool ignore_unknown, const Progress& progress = {},
                                           const Plan& plan = {});
  // Every migration known to the binary or recorded in the database, by id.
  StatusOr<std::vector<MigrationState>> Status();
  // Rolls back the newest `n` applied migrations (newest first) and returns
  // their ids; with `dry_run`, only returns them.
  StatusOr<std::vector<std::string>> Down(int n, bool dry_run, const Progress& progress = {});
  // True when every migration of the binary is applied (migrations unknown
  // to it are fine: expand-then-contract keeps an older praefect working).
  StatusOr<bool> SchemaIsCurrent();

 private:
  [[nodiscard]] praefect::Status Lock();
  void Unlock();
  StatusOr<std::vector<std::pair<std::string, std::string>>> Applied();  // id, applied_at; by id
  [[nodiscard]] praefect::Status RunInTransaction(std::string_view script, std::string_view record_sql,
                                                  const std::string& id);
  const Migration* Find(std::string_view id) const;

  Connection* conn_;
  std::vector<Migration> migrations_;
  Deadline deadline_;
};

// For `praefect serve`: OK when the database named by config.database is
// reachable and its schema is current; otherwise UNAVAILABLE (database down)
// or FAILED_PRECONDITION naming the missing migrations and the command to run
// ("run praefect -config <config_path> sql-migrate").
[[nodiscard]] praefect::Status CheckSchema(const config::Config& config, const std::string& config_path,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace praefect::datastore::postgres
