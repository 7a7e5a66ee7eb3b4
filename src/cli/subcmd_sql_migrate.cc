// praefect -config FILE sql-migrate [-ignore-unknown[=false]] [-verbose]
//
// Applies the pending migrations compiled into this binary, with Praefect's
// lines:
//   praefect sql-migrate: migrations to apply: N
//
//   =  2006-01-02T15:04:05 0001_initial_schema: migrating
//   == 2006-01-02T15:04:05 0001_initial_schema: applied (12.3ms)
//
//   praefect sql-migrate: OK (applied N migrations)
// With nothing to apply only the last line, with 0. -verbose also prints
// each migration's SQL. As in Praefect, migrations in the database that this
// binary does not know are ignored unless -ignore-unknown=false.
#include <time.h>

#include <ostream>

#include "cli/sql_common.h"
#include "common/duration.h"
#include "datastore/postgres/migrator.h"

namespace praefect::cli {
namespace {

constexpr const char kName[] = "sql-migrate";
constexpr const char kUsage[] = "usage: praefect -config FILE sql-migrate [-ignore-unknown[=false]] [-verbose]\n";

std::string Now() {
  time_t t = time(nullptr);
  struct tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

}  // namespace

int RunSqlMigrate(const Invocation& inv) {
  bool ignore_unknown = true;
  bool verbose = false;
  for (const std::string& arg : inv.args) {
    bool bad = false;
    if (ParseBoolFlag(arg, "ignore-unknown", &ignore_unknown, &bad) || ParseBoolFlag(arg, "verbose", &verbose, &bad)) {
      if (bad) {
        inv.err << SqlCommandName(kName) << ": invalid boolean in \"" << arg << "\"\n" << kUsage;
        return 1;
      }
      continue;
    }
    inv.err << SqlCommandName(kName) << ": unexpected argument \"" << arg << "\"\n" << kUsage;
    return 1;
  }
  auto config = LoadConfigForSql(inv, kName);
  if (!config) return 1;
  // The migrator holds a session lock: a session-pooled or direct connection.
  auto conn = OpenSessionDatabase(*config, std::chrono::seconds(10));
  if (!conn.ok()) return SqlFail(inv, kName, conn.status());
  // Migrations may rewrite big tables: no deadline an operator would hit,
  // but not forever either.
  using datastore::postgres::Migrator;
  Migrator migrator(conn->get(), datastore::postgres::EmbeddedMigrations(),
                    datastore::postgres::Clock::now() + std::chrono::hours(1));
  size_t planned = 0;
  auto on_plan = [&](const std::vector<datastore::postgres::Migration>& pending) {
    planned = pending.size();
    if (planned > 0) inv.out << SqlCommandName(kName) << ": migrations to apply: " << planned << "\n\n" << std::flush;
  };
  auto applied = migrator.Apply(ignore_unknown, [&](Migrator::Event e, const datastore::postgres::Migration& m,
                                                    std::chrono::nanoseconds took) {
    if (e == Migrator::Event::kMigrating) {
      inv.out << "=  " << Now() << " " << m.id << ": migrating\n";
      if (verbose) inv.out << "\t" << m.up << "\n";
    } else {
      inv.out << "== " << Now() << " " << m.id << ": applied (" << FormatGoDuration(took) << ")\n";
    }
    inv.out << std::flush;
  }, on_plan);
  if (!applied.ok()) return SqlFail(inv, kName, applied.status());
  if (planned > 0) inv.out << "\n";
  inv.out << SqlCommandName(kName) << ": OK (applied " << applied->size() << " migrations)\n";
  return 0;
}

}  // namespace praefect::cli
