// PostgresDatastore: node health as every praefect sees it (node_status),
// the quorum view over it, and the per-repository primary election.
#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {

using sql::P;

Status PostgresDatastore::RecordHealth(std::string_view praefect_name, const std::vector<NodeHealth>& checks) {
  if (checks.empty()) return Status::Ok();
  std::vector<std::string> shards, nodes, healthy;
  for (const auto& c : checks) {
    shards.push_back(c.virtual_storage);
    nodes.push_back(c.storage);
    healthy.push_back(c.healthy ? "t" : "f");
  }
  // DISTINCT ON: one row per node (the last check given), since an upsert
  // cannot touch a row twice.
  return pool_
      ->Exec(R"(
INSERT INTO node_status (praefect_name, shard_name, node_name, last_contact_attempt_at, last_seen_active_at)
SELECT DISTINCT ON (shard, node) $1, shard, node, now(), CASE WHEN ok THEN now() END
FROM unnest($2::text[], $3::text[], $4::boolean[]) WITH ORDINALITY AS c(shard, node, ok, i)
ORDER BY shard, node, i DESC
ON CONFLICT (praefect_name, shard_name, node_name) DO UPDATE SET
  last_contact_attempt_at = EXCLUDED.last_contact_attempt_at,
  last_seen_active_at = COALESCE(EXCLUDED.last_seen_active_at, node_status.last_seen_active_at))",
             {P(praefect_name), TextArray(shards), TextArray(nodes), TextArray(healthy)}, Deadline())
      .status();
}

StatusOr<HealthyStorages> PostgresDatastore::GetHealthyStorages(std::chrono::milliseconds window) {
  auto rows = pool_->Exec("WITH " + sql::HealthyCtes(sql::WindowParam(1)) +
                              "\nSELECT virtual_storage, storage FROM healthy ORDER BY virtual_storage, storage",
                          {P(static_cast<int64_t>(window.count()))}, Deadline());
  if (!rows.ok()) return rows.status();
  HealthyStorages out;
  for (size_t i = 0; i < rows->size(); ++i) out[rows->Text(i, 0)].push_back(rows->Text(i, 1));
  return out;
}

// The election is one statement under the repositories row lock, so racing
// praefects serialize on it: the first elects, the others find its choice
// valid and keep it. The replicas are read with a row lock (FOR SHARE) for
// the reason RecordWrite's are: after waiting for the repositories row, a
// plain read would see the generations as of the statement's start and
// might find the primary outdated by the very write it waited for. For the
// same reason the UPDATE compares with r's "primary" (the locked, newest
// version), not with the row as the statement's snapshot has it.
StatusOr<PrimaryElection> PostgresDatastore::GetPrimary(int64_t repository_id, std::chrono::milliseconds window) {
  const std::string sql = R"(
WITH r AS MATERIALIZED (
  SELECT repository_id, virtual_storage, relative_path, "primary", COALESCE(generation, 0) AS latest
  FROM repositories WHERE repository_id = $1
  FOR NO KEY UPDATE
), replicas AS MATERIALIZED (
  SELECT s.storage, s.generation FROM r JOIN storage_repositories s USING (repository_id)
  FOR SHARE OF s
), )" + sql::HealthyCtes(sql::WindowParam(2)) +
                          R"(, candidates AS MATERIALIZED (
  SELECT p.storage, EXISTS (SELECT 1 FROM repository_assignments a
                            WHERE a.repository_id = r.repository_id AND a.storage = p.storage) AS assigned
  FROM r
  JOIN replicas p ON p.generation = r.latest
  JOIN healthy h ON h.virtual_storage = r.virtual_storage AND h.storage = p.storage
  WHERE NOT EXISTS (
    SELECT 1 FROM replication_queue q
    WHERE q.state IN ('ready', 'in_progress', 'failed') AND q.job->>'change' = 'delete_replica'
      AND (q.job->>'repository_id')::bigint = r.repository_id AND q.job->>'target_node_storage' = p.storage)
), valid AS MATERIALIZED (
  SELECT storage FROM candidates WHERE assigned OR NOT EXISTS (SELECT 1 FROM candidates WHERE assigned)
), chosen AS MATERIALIZED (
  SELECT COALESCE((SELECT r."primary" FROM r WHERE r."primary" IN (SELECT storage FROM valid)),
                  (SELECT storage FROM valid ORDER BY random() LIMIT 1)) AS storage
), elected AS (
  UPDATE repositories SET "primary" = chosen.storage FROM r, chosen
  WHERE repositories.repository_id = r.repository_id AND r."primary" IS DISTINCT FROM chosen.storage
)
SELECT COALESCE(r."primary", ''), COALESCE(chosen.storage, ''), r.virtual_storage, r.relative_path
FROM r, chosen)";
  auto rows = pool_->Exec(sql, {P(repository_id), P(static_cast<int64_t>(window.count()))}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return NotFound("repository " + std::to_string(repository_id) + " is not registered");
  PrimaryElection out;
  out.previous = rows->Text(0, 0);
  out.primary = rows->Text(0, 1);
  out.changed = out.primary != out.previous;
  if (!out.primary.empty()) return out;
  // Why nobody qualified, for the refusal's message: a follow-up read, not
  // part of the election.
  auto repo = GetRepository(rows->Text(0, 2), rows->Text(0, 3));
  auto healthy = GetHealthyStorages(window);
  if (!repo.ok() || !repo->has_value() || !healthy.ok()) {
    out.reason = "no replica is a valid primary";
    return out;
  }
  auto it = healthy->find(rows->Text(0, 2));
  out.reason = ElectionFailureReason(**repo, it == healthy->end() ? std::vector<std::string>() : it->second);
  return out;
}

}  // namespace praefect::datastore
