// PostgresDatastore::SetReplicationFactor: which storages hold a repository
// (repository_assignments), and the jobs that make them do so.
#include <algorithm>

#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {
namespace {

using sql::P;

std::vector<std::string> Minus(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<std::string> out;
  for (const auto& s : a) {
    if (std::find(b.begin(), b.end(), s) == b.end()) out.push_back(s);
  }
  return out;
}

// Applies a change computed from the repository as read at `xmin`: it
// changes nothing (and returns no row) when the repositories row is no
// longer that version. Every change of the primary or the assignments
// writes that row, so a new xmin means the computation is stale. The row is
// locked first, and its xmin compared on the newest version (the lock's
// recheck), which a plain read of the snapshot would not give.
constexpr const char* kApply = R"(
WITH r AS MATERIALIZED (
  SELECT repository_id, virtual_storage, relative_path, replica_path, COALESCE("primary", '') AS primary_storage
  FROM repositories WHERE repository_id = $1 AND xmin::text = $2
  FOR NO KEY UPDATE
), touched AS (
  UPDATE repositories SET "primary" = repositories."primary" FROM r
  WHERE repositories.repository_id = r.repository_id
), unassigned AS (
  DELETE FROM repository_assignments a USING r
  WHERE a.repository_id = r.repository_id AND NOT a.storage = ANY($3::text[])
), assigned AS (
  INSERT INTO repository_assignments (repository_id, virtual_storage, relative_path, storage)
  SELECT r.repository_id, r.virtual_storage, r.relative_path, s FROM r, unnest($3::text[]) AS s
  ON CONFLICT (repository_id, storage) DO NOTHING
), dropped AS (
  DELETE FROM storage_repositories s USING r
  WHERE s.repository_id = r.repository_id AND s.storage = ANY($5::text[])
  RETURNING s.storage AS t
), jobs AS (
  INSERT INTO replication_queue (lock_id, job, meta)
  SELECT LOCK_ID, UPDATE_JOB, '{}'::jsonb FROM r, unnest($4::text[]) AS t
  UNION ALL
  SELECT LOCK_ID,
         jsonb_build_object('change', 'delete_replica', 'repository_id', r.repository_id,
                            'virtual_storage', r.virtual_storage, 'relative_path', r.relative_path,
                            'replica_path', r.replica_path, 'source_node_storage', '', 'target_node_storage', t),
         '{}'::jsonb
  FROM r, dropped
)
SELECT count(*) FROM r)";

std::string ApplySql() {
  std::string sql = kApply;
  for (size_t at; (at = sql.find("LOCK_ID")) != std::string::npos;) sql.replace(at, 7, sql::kLockId);
  sql.replace(sql.find("UPDATE_JOB"), 10, sql::UpdateJob("r.primary_storage"));
  return sql;
}

}  // namespace

StatusOr<std::vector<std::string>> PostgresDatastore::SetReplicationFactor(std::string_view virtual_storage,
                                                                           std::string_view relative_path, int factor,
                                                                           const std::vector<std::string>& configured) {
  if (Status st = CheckReplicationFactor(factor, configured.size()); !st.ok()) return st;
  static const std::string apply = ApplySql();
  // A concurrent election or change of assignments makes the apply a no-op;
  // then read and pick again. Each retry means another caller made progress.
  constexpr int kAttempts = 10;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto rows = pool_->Exec(R"(
SELECT r.repository_id, r.xmin::text, COALESCE(r."primary", ''),
       (SELECT array_agg(a.storage ORDER BY a.storage) FROM repository_assignments a
        WHERE a.repository_id = r.repository_id)
FROM repositories r WHERE r.virtual_storage = $1 AND r.relative_path = $2)",
                            {P(virtual_storage), P(relative_path)}, Deadline());
    if (!rows.ok()) return rows.status();
    if (rows->empty())
      return NotFound("repository \"" + std::string(relative_path) + "\" not found in virtual storage \"" +
                      std::string(virtual_storage) + "\"");
    auto id = rows->Int64(0, 0);
    if (!id.ok()) return id.status();
    const std::string primary = rows->Text(0, 2);
    std::vector<std::string> current = ParseTextArray(rows->Text(0, 3));
    const std::vector<std::string>& before = current.empty() ? configured : current;
    std::vector<std::string> after = PickAssignments(before, configured, primary, factor);
    // Already so (as of the read): nothing to write, and not writing keeps
    // concurrent callers from invalidating each other's reads for nothing.
    if (after == current) return after;
    auto applied = pool_->Exec(apply,
                               {P(*id), rows->Text(0, 1), TextArray(after), TextArray(Minus(after, before)),
                                TextArray(Minus(before, after))},
                               Deadline());
    if (!applied.ok()) return applied.status();
    auto n = applied->Int64(0, 0);
    if (!n.ok()) return n.status();
    if (*n == 1) return after;
  }
  return Status(StatusCode::kAborted, "the assignments of repository \"" + std::string(relative_path) +
                                          "\" in virtual storage \"" + std::string(virtual_storage) +
                                          "\" kept changing concurrently; try again");
}

}  // namespace praefect::datastore
