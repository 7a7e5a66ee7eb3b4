// praefect -config FILE sql-migrate-status
//
// Praefect's table of migrations (tablewriter's layout): each migration this
// binary knows or the database records, by id, with the time it was applied,
// "no", or "unknown migration" for one applied by a newer praefect.
#include <algorithm>
#include <ostream>

#include "cli/sql_common.h"
#include "datastore/postgres/migrator.h"

namespace praefect::cli {
namespace {

constexpr const char kName[] = "sql-migrate-status";

void PrintTable(std::ostream& out, const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t w0 = 9, w1 = 7;  // "MIGRATION", "APPLIED"
  for (const auto& [a, b] : rows) {
    w0 = std::max(w0, a.size());
    w1 = std::max(w1, b.size());
  }
  auto line = [&] { out << "+" << std::string(w0 + 2, '-') << "+" << std::string(w1 + 2, '-') << "+\n"; };
  auto center = [](const std::string& s, size_t w) {
    size_t left = (w - s.size()) / 2;
    return std::string(left, ' ') + s + std::string(w - s.size() - left, ' ');
  };
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - s.size(), ' '); };
  line();
  out << "| " << center("MIGRATION", w0) << " | " << center("APPLIED", w1) << " |\n";
  line();
  for (const auto& [a, b] : rows) out << "| " << pad(a, w0) << " | " << pad(b, w1) << " |\n";
  line();
}

}  // namespace

int RunSqlMigrateStatus(const Invocation& inv) {
  if (!inv.args.empty()) {
    inv.err << SqlCommandName(kName) << ": unexpected argument \"" << inv.args[0]
            << "\"\nusage: praefect -config FILE sql-migrate-status\n";
    return 1;
  }
  auto config = LoadConfigForSql(inv, kName);
  if (!config) return 1;
  auto conn = OpenDatabase(*config, std::chrono::seconds(10));
  if (!conn.ok()) return SqlFail(inv, kName, conn.status());
  datastore::postgres::Migrator migrator(conn->get(), datastore::postgres::EmbeddedMigrations(),
                                         datastore::postgres::Clock::now() + std::chrono::seconds(30));
  auto states = migrator.Status();
  if (!states.ok()) return SqlFail(inv, kName, states.status());
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& s : *states)
    rows.emplace_back(s.id, s.unknown ? "unknown migration" : s.applied ? s.applied_at : "no");
  PrintTable(inv.out, rows);
  return 0;
}

}  // namespace praefect::cli
