// praefect -config FILE sql-migrate-down [-f] N
//
// Rolls back the newest N applied migrations. Without -f a dry run, as
// Praefect's:
//   DRY RUN -- would roll back:
//
//   - 0002_notify_triggers
//
//   To apply these migrations run with -f
// With -f: OK (applied N "down" migrations).
#include <charconv>
#include <ostream>

#include "cli/sql_common.h"
#include "datastore/postgres/migrator.h"

namespace praefect::cli {
namespace {

constexpr const char kName[] = "sql-migrate-down";
constexpr const char kUsage[] = "usage: praefect -config FILE sql-migrate-down [-f] N\n";

}  // namespace

int RunSqlMigrateDown(const Invocation& inv) {
  bool force = false;
  std::vector<std::string> positional;
  for (const std::string& arg : inv.args) {
    bool bad = false;
    if (positional.empty() && ParseBoolFlag(arg, "f", &force, &bad)) {
      if (bad) {
        inv.err << SqlCommandName(kName) << ": invalid boolean in \"" << arg << "\"\n" << kUsage;
        return 1;
      }
      continue;
    }
    positional.push_back(arg);
  }
  if (positional.size() != 1) {
    inv.err << SqlCommandName(kName)
            << (positional.empty() ? " requires a single positional argument\n"
                                   : " accepts only single positional argument\n")
            << kUsage;
    return 1;
  }
  int n = 0;
  const std::string& s = positional[0];
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || end != s.data() + s.size()) {
    inv.err << SqlCommandName(kName) << ": \"" << s << "\" is not a number of migrations\n" << kUsage;
    return 1;
  }
  if (n < 1) {
    inv.err << SqlCommandName(kName) << ": number of migrations to roll back must be 1 or more\n";
    return 1;
  }
  auto config = LoadConfigForSql(inv, kName);
  if (!config) return 1;
  // The migrator holds a session lock: a session-pooled or direct connection.
  auto conn = OpenSessionDatabase(*config, std::chrono::seconds(10));
  if (!conn.ok()) return SqlFail(inv, kName, conn.status());
  datastore::postgres::Migrator migrator(conn->get(), datastore::postgres::EmbeddedMigrations(),
                                         datastore::postgres::Clock::now() + std::chrono::hours(1));
  auto ids = migrator.Down(n, !force);
  if (!ids.ok()) return SqlFail(inv, kName, ids.status());
  if (force) {
    inv.out << "OK (applied " << ids->size() << " \"down\" migrations)\n";
    return 0;
  }
  inv.out << "DRY RUN -- would roll back:\n\n";
  for (const auto& id : *ids) inv.out << "- " << id << "\n";
  inv.out << "\nTo apply these migrations run with -f\n";
  return 0;
}

}  // namespace praefect::cli
