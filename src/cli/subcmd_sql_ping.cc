// praefect -config FILE sql-ping
//
// As Praefect's: connects to [database], checks that the server is a
// PostgreSQL praefect supports, and prints "praefect sql-ping: OK"; on
// failure "praefect sql-ping: fail: <reason>" on stderr and exit status 1.
#include <ostream>

#include "cli/sql_common.h"

namespace praefect::cli {
namespace {

constexpr const char kName[] = "sql-ping";
constexpr int kMinServerVersion = 110000;  // PostgreSQL 11: transition tables, EXECUTE FUNCTION

}  // namespace

int RunSqlPing(const Invocation& inv) {
  if (!inv.args.empty()) {
    inv.err << SqlCommandName(kName) << ": unexpected argument \"" << inv.args[0]
            << "\"\nusage: praefect -config FILE sql-ping\n";
    return 1;
  }
  auto config = LoadConfigForSql(inv, kName);
  if (!config) return 1;
  auto conn = OpenDatabase(*config, std::chrono::seconds(10));
  if (!conn.ok()) return SqlFail(inv, kName, conn.status());
  auto r = (*conn)->Exec("SELECT current_setting('server_version_num')::int, current_setting('server_version')", {},
                         datastore::postgres::Clock::now() + std::chrono::seconds(10));
  if (!r.ok()) return SqlFail(inv, kName, r.status());
  auto num = r->Int64(0, 0);
  if (!num.ok()) return SqlFail(inv, kName, num.status());
  if (*num < kMinServerVersion)
    return SqlFail(inv, kName,
                   FailedPrecondition("PostgreSQL " + r->Text(0, 1) + " is too old: praefect needs 11 or newer"));
  inv.out << SqlCommandName(kName) << ": OK\n";
  return 0;
}

}  // namespace praefect::cli
