// praefect -config FILE replication-backlog
//
// A summary of the replication queue for operators and the daily
// praefect-maintenance run: the number of jobs in each state, per virtual
// storage and target storage, then one total line. praefect keeps no row
// in "dead", "completed" or "cancelled": a job that dies is deleted then
// (its replica stays outdated until the reconciler schedules a new job),
// and one that completes too. Rows in those states, and "failed" ones,
// are left by an earlier version (Praefect); a running praefect deletes
// the finished ones and makes the failed ones ready within a minute or so.
// The columns stay, so that such a database reads as it is. Read-only;
// exit 0 whatever the backlog, 1 when the database cannot be read.
#include <algorithm>
#include <array>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "cli/sql_common.h"

namespace praefect::cli {
namespace {

constexpr const char kName[] = "replication-backlog";

// The states of replication_queue (sql/migrations/0001), in the order shown.
constexpr std::array<std::string_view, 6> kStates = {"ready",  "in_progress", "failed",
                                                     "dead",   "completed",   "cancelled"};

using Key = std::pair<std::string, std::string>;  // virtual storage, target storage

void PrintTable(std::ostream& out, const std::map<Key, std::array<int64_t, kStates.size()>>& counts) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"VIRTUAL STORAGE", "TARGET STORAGE"};
  for (std::string_view s : kStates) {
    std::string h(s);
    std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    header.push_back(h);
  }
  rows.push_back(header);
  for (const auto& [key, n] : counts) {
    std::vector<std::string> row = {key.first, key.second};
    for (int64_t v : n) row.push_back(std::to_string(v));
    rows.push_back(row);
  }
  std::vector<size_t> width(header.size(), 0);
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      bool number = i >= 2 && &row != &rows[0];
      std::string pad(width[i] - row[i].size(), ' ');
      line += number ? pad + row[i] : row[i] + pad;
      if (i + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
}

}  // namespace

int RunReplicationBacklog(const Invocation& inv) {
  if (!inv.args.empty()) {
    inv.err << SqlCommandName(kName) << ": unexpected argument \"" << inv.args[0]
            << "\"\nusage: praefect -config FILE replication-backlog\n";
    return 1;
  }
  auto config = LoadConfigForSql(inv, kName);
  if (!config) return 1;
  auto conn = OpenDatabase(*config, std::chrono::seconds(10));
  if (!conn.ok()) return SqlFail(inv, kName, conn.status());
  auto r = (*conn)->Exec(
      "SELECT COALESCE(job->>'virtual_storage', ''), COALESCE(job->>'target_node_storage', ''), state, count(*) "
      "FROM replication_queue GROUP BY 1, 2, 3",
      {}, datastore::postgres::Clock::now() + std::chrono::seconds(30));
  if (!r.ok()) {
    Status st = r.status();
    if (st.message().find("42P01") != std::string::npos)  // undefined_table: schema not migrated
      st = FailedPrecondition("the database has no replication_queue table; run praefect -config " +
                              inv.config_path.value_or("FILE") + " sql-migrate");
    return SqlFail(inv, kName, st);
  }
  std::map<Key, std::array<int64_t, kStates.size()>> counts;
  int64_t pending = 0, dead = 0;
  for (size_t i = 0; i < r->size(); ++i) {
    auto n = r->Int64(i, 3);
    if (!n.ok()) return SqlFail(inv, kName, n.status());
    auto& slot = counts[{r->Text(i, 0), r->Text(i, 1)}];
    std::string state = r->Text(i, 2);
    auto at = std::find(kStates.begin(), kStates.end(), state);
    if (at == kStates.end()) continue;  // the CHECK constraint allows no other
    slot[static_cast<size_t>(at - kStates.begin())] += *n;
    if (state == "dead") dead += *n;
    if (state == "ready" || state == "in_progress" || state == "failed") pending += *n;
  }
  if (counts.empty()) {
    inv.out << SqlCommandName(kName) << ": the replication queue is empty\n";
    return 0;
  }
  PrintTable(inv.out, counts);
  inv.out << SqlCommandName(kName) << ": " << pending << " job(s) to do (ready, in_progress, failed), " << dead
          << " dead\n";
  return 0;
}

}  // namespace praefect::cli
