// PostgresDatastore as the TrackingStore: remove-repository's record and
// job removal, track-repository's update jobs, list-untracked-repositories'
// lookup.
#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {

using sql::P;

StatusOr<bool> PostgresDatastore::DeleteRepositoryRecord(std::string_view virtual_storage,
                                                         std::string_view relative_path) {
  auto rows = pool_->Exec("DELETE FROM repositories WHERE virtual_storage = $1 AND relative_path = $2",
                          {P(virtual_storage), P(relative_path)}, Deadline());
  if (!rows.ok()) return rows.status();
  return rows->affected > 0;
}

StatusOr<int64_t> PostgresDatastore::RemoveReplicationJobs(std::string_view virtual_storage,
                                                           std::string_view relative_path, bool keep_deletions) {
  // One statement: the DELETE and the count see the same snapshot, so a
  // job that leaves in_progress between them is counted, never missed.
  auto rows = pool_->Exec(R"(
WITH jobs AS MATERIALIZED (
  SELECT id, state FROM replication_queue
  WHERE job->>'virtual_storage' = $1 AND job->>'relative_path' = $2
    AND NOT ($3::boolean AND job->>'change' = 'delete_replica')
), deleted AS (
  DELETE FROM replication_queue q USING jobs WHERE q.id = jobs.id AND jobs.state <> 'in_progress'
)
SELECT count(*) FROM jobs WHERE state = 'in_progress')",
                          {P(virtual_storage), P(relative_path), P(keep_deletions ? "true" : "false")}, Deadline());
  if (!rows.ok()) return rows.status();
  return rows->Int64(0, 0);
}

StatusOr<bool> PostgresDatastore::EnqueueUpdate(int64_t repository_id, std::string_view source,
                                                std::string_view target, std::string_view correlation_id) {
  const std::string sql = R"(
WITH r AS (
  SELECT repository_id, virtual_storage, relative_path, replica_path, $3::text AS t
  FROM repositories WHERE repository_id = $1
)
INSERT INTO replication_queue (lock_id, job, meta)
SELECT )" + std::string(sql::kLockId) +
                          ", " + sql::UpdateJob("$2::text") + R"(, jsonb_build_object('correlation_id', $4::text)
FROM r
WHERE NOT EXISTS (
  SELECT 1 FROM replication_queue q
  WHERE q.state = 'ready' AND q.lock_id = )" +
                          std::string(sql::kLockId) + R"(
    AND q.job->>'change' = 'update' AND q.job->>'source_node_storage' = $2::text))";
  auto rows = pool_->Exec(sql, {P(repository_id), P(source), P(target), P(correlation_id)}, Deadline());
  if (!rows.ok()) return rows.status();
  return rows->affected > 0;
}

StatusOr<std::vector<std::string>> PostgresDatastore::UntrackedReplicaPaths(
    std::string_view virtual_storage, std::string_view storage, const std::vector<std::string>& replica_paths) {
  std::vector<std::string> untracked;
  if (replica_paths.empty()) return untracked;
  auto rows = pool_->Exec(R"(
SELECT p.path FROM unnest($3::text[]) WITH ORDINALITY AS p(path, n)
WHERE NOT EXISTS (
  SELECT 1 FROM repositories r JOIN storage_repositories s USING (repository_id)
  WHERE r.virtual_storage = $1 AND r.replica_path = p.path AND s.storage = $2)
ORDER BY p.n)",
                          {P(virtual_storage), P(storage), TextArray(replica_paths)}, Deadline());
  if (!rows.ok()) return rows.status();
  for (size_t i = 0; i < rows->size(); ++i) untracked.push_back(rows->Text(i, 0));
  return untracked;
}

}  // namespace praefect::datastore
