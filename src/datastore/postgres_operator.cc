// PostgresDatastore as the OperatorStore: the per-replica view of dataloss
// and metadata (assigned, healthy, valid primary, as the election sees
// them), accept-dataloss and verify's MarkUnverified.
#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {
namespace {

using postgres::Rows;
using sql::P;

// The per-replica view of the repositories a `selected` CTE names (columns
// repository_id), for the configuration in $1/$2 (virtual storages,
// storages) and the health window in $3. One row per replica, by
// repository id and storage (storage NULL for a repository with none):
// repository_id, virtual_storage, relative_path, replica_path, primary,
// generation, storage, replica generation, assigned, healthy,
// valid_primary, verified_at in Unix microseconds.
//
// Assigned: explicitly, or every configured storage when the repository has
// no assignment to a configured storage. Replicas: every recorded one and
// every assigned storage (generation -1 when not recorded). Valid primary:
// the candidates of GetPrimary (postgres_election.cc).
std::string ReplicaViewSql(const std::string& selected) {
  return "WITH configured AS MATERIALIZED (\n"
         "  SELECT * FROM unnest($1::text[], $2::text[]) AS c(virtual_storage, storage)\n"
         "), " +
         sql::HealthyCtes(sql::WindowParam(3)) + ", selected AS MATERIALIZED (" + selected + R"(
), repos AS MATERIALIZED (
  SELECT r.repository_id, r.virtual_storage, r.relative_path, r.replica_path, COALESCE(r."primary", '') AS primary_storage,
         GREATEST(COALESCE(r.generation, -1),
                  COALESCE((SELECT max(s.generation) FROM storage_repositories s
                            WHERE s.repository_id = r.repository_id), -1)) AS latest
  FROM repositories r JOIN selected USING (repository_id)
), explicit AS MATERIALIZED (
  SELECT a.repository_id, a.storage FROM repository_assignments a JOIN repos r USING (repository_id)
  JOIN configured c ON c.virtual_storage = r.virtual_storage AND c.storage = a.storage
), assigned AS MATERIALIZED (
  SELECT repository_id, storage FROM explicit
  UNION
  SELECT r.repository_id, c.storage FROM repos r JOIN configured c USING (virtual_storage)
  WHERE NOT EXISTS (SELECT 1 FROM explicit e WHERE e.repository_id = r.repository_id)
), replica_storages AS (
  SELECT s.repository_id, s.storage FROM storage_repositories s JOIN repos USING (repository_id)
  UNION
  SELECT repository_id, storage FROM assigned
), replicas AS MATERIALIZED (
  SELECT rs.repository_id, rs.storage, COALESCE(s.generation, -1) AS generation, s.verified_at,
         EXISTS (SELECT 1 FROM assigned a WHERE a.repository_id = rs.repository_id AND a.storage = rs.storage)
           AS assigned,
         EXISTS (SELECT 1 FROM explicit e WHERE e.repository_id = rs.repository_id AND e.storage = rs.storage)
           AS explicitly_assigned,
         EXISTS (SELECT 1 FROM healthy h WHERE h.virtual_storage = r.virtual_storage AND h.storage = rs.storage)
           AS healthy,
         s.generation IS NOT NULL AND s.generation = r.latest AND NOT EXISTS (
           SELECT 1 FROM replication_queue q
           WHERE q.state IN ('ready', 'in_progress', 'failed') AND q.job->>'change' = 'delete_replica'
             AND (q.job->>'repository_id')::bigint = rs.repository_id
             AND q.job->>'target_node_storage' = rs.storage) AS up_to_date
  FROM replica_storages rs JOIN repos r USING (repository_id)
  LEFT JOIN storage_repositories s ON s.repository_id = rs.repository_id AND s.storage = rs.storage
), candidates AS MATERIALIZED (
  SELECT *, up_to_date AND healthy AS candidate FROM replicas
), judged AS (
  SELECT c.*, c.candidate AND (c.explicitly_assigned OR NOT bool_or(c.candidate AND c.explicitly_assigned)
                                 OVER (PARTITION BY c.repository_id)) AS valid_primary
  FROM candidates c
)
SELECT r.repository_id, r.virtual_storage, r.relative_path, r.replica_path, r.primary_storage, r.latest,
       v.storage, v.generation, v.assigned, v.healthy, v.valid_primary,
       (EXTRACT(EPOCH FROM v.verified_at) * 1000000)::bigint
FROM repos r LEFT JOIN judged v USING (repository_id)
ORDER BY r.repository_id, v.storage)";
}

std::pair<std::string, std::string> ConfiguredArrays(const ConfiguredStorages& configured) {
  std::vector<std::string> vs, storages;
  for (const auto& [v, s] : configured) {
    vs.push_back(v);
    storages.push_back(s);
  }
  return {TextArray(vs), TextArray(storages)};
}

// Groups the rows of ReplicaViewSql by repository.
StatusOr<std::vector<RepositoryStatus>> StatusesFromRows(const Rows& rows) {
  std::vector<RepositoryStatus> out;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto id = rows.Int64(i, 0);
    if (!id.ok()) return id.status();
    if (out.empty() || out.back().repository_id != *id) {
      RepositoryStatus repo;
      repo.repository_id = *id;
      repo.virtual_storage = rows.Text(i, 1);
      repo.relative_path = rows.Text(i, 2);
      repo.replica_path = rows.Text(i, 3);
      repo.primary = rows.Text(i, 4);
      auto latest = rows.Int64(i, 5);
      if (!latest.ok()) return latest.status();
      repo.generation = *latest;
      out.push_back(std::move(repo));
    }
    if (rows.IsNull(i, 6)) continue;
    ReplicaStatus replica;
    replica.storage = rows.Text(i, 6);
    auto generation = rows.Int64(i, 7);
    if (!generation.ok()) return generation.status();
    replica.generation = *generation;
    replica.assigned = rows.Bool(i, 8);
    replica.healthy = rows.Bool(i, 9);
    replica.valid_primary = rows.Bool(i, 10);
    if (!rows.IsNull(i, 11)) {
      auto at = rows.Int64(i, 11);
      if (!at.ok()) return at.status();
      replica.verified_at_us = *at;
    }
    out.back().replicas.push_back(std::move(replica));
  }
  return out;
}

}  // namespace

StatusOr<std::vector<RepositoryStatus>> PostgresDatastore::ListDataloss(std::string_view virtual_storage,
                                                                        bool include_partially_unavailable,
                                                                        const ConfiguredStorages& configured,
                                                                        std::chrono::milliseconds window) {
  auto [vs, storages] = ConfiguredArrays(configured);
  // The view is computed for the virtual storage's repositories, then
  // filtered: a repository is listed when an assigned replica is not a valid
  // primary, and without $5 only when no replica is.
  auto rows = pool_->Exec(ReplicaViewSql("SELECT repository_id FROM repositories WHERE virtual_storage = $4"),
                          {vs, storages, P(static_cast<int64_t>(window.count())), P(virtual_storage)}, Deadline());
  if (!rows.ok()) return rows.status();
  auto all = StatusesFromRows(*rows);
  if (!all.ok()) return all.status();
  std::vector<RepositoryStatus> out;
  for (RepositoryStatus& repo : *all) {
    bool partially = false;
    for (const ReplicaStatus& r : repo.replicas) partially = partially || (r.assigned && !r.valid_primary);
    if (!partially) continue;
    if (!include_partially_unavailable && !repo.Unavailable()) continue;
    out.push_back(std::move(repo));
  }
  return out;
}

StatusOr<std::optional<RepositoryStatus>> PostgresDatastore::GetRepositoryStatus(const RepositoryKey& key,
                                                                                 const ConfiguredStorages& configured,
                                                                                 std::chrono::milliseconds window) {
  auto [vs, storages] = ConfiguredArrays(configured);
  StatusOr<Rows> rows = key.repository_id
                            ? pool_->Exec(ReplicaViewSql("SELECT $4::bigint AS repository_id"),
                                          {vs, storages, P(static_cast<int64_t>(window.count())),
                                           P(*key.repository_id)},
                                          Deadline())
                            : pool_->Exec(ReplicaViewSql("SELECT repository_id FROM repositories WHERE "
                                                         "virtual_storage = $4 AND relative_path = $5"),
                                          {vs, storages, P(static_cast<int64_t>(window.count())),
                                           P(key.virtual_storage), P(key.relative_path)},
                                          Deadline());
  if (!rows.ok()) return rows.status();
  auto found = StatusesFromRows(*rows);
  if (!found.ok()) return found.status();
  if (found->empty()) return std::optional<RepositoryStatus>();
  return std::optional<RepositoryStatus>(std::move(found->front()));
}

Status PostgresDatastore::SetAuthoritativeStorage(std::string_view virtual_storage, std::string_view relative_path,
                                                  std::string_view storage) {
  // The UPDATE locks the repositories row, as every statement that changes
  // generations does first (postgres_datastore.h).
  auto rows = pool_->Exec(R"(
WITH r AS (
  UPDATE repositories SET generation = GREATEST(COALESCE(generation, 0),
                                                COALESCE((SELECT max(s.generation) FROM storage_repositories s
                                                          WHERE s.repository_id = repositories.repository_id), 0)) + 1
  WHERE virtual_storage = $1 AND relative_path = $2
  RETURNING repository_id, virtual_storage, relative_path, generation
)
INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, generation)
SELECT repository_id, virtual_storage, relative_path, $3, generation FROM r
ON CONFLICT (repository_id, storage) DO UPDATE SET generation = EXCLUDED.generation)",
                          {P(virtual_storage), P(relative_path), P(storage)}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->affected == 0)
    return NotFound("repository \"" + std::string(relative_path) + "\" is not registered in virtual storage \"" +
                    std::string(virtual_storage) + "\"");
  return Status::Ok();
}

StatusOr<int64_t> PostgresDatastore::MarkUnverified(const UnverifiedSelector& selector) {
  StatusOr<Rows> rows =
      selector.repository_id
          ? pool_->Exec("UPDATE storage_repositories SET verified_at = NULL "
                        "WHERE repository_id = $1 AND verified_at IS NOT NULL",
                        {P(*selector.repository_id)}, Deadline())
          : pool_->Exec("UPDATE storage_repositories s SET verified_at = NULL FROM repositories r "
                        "WHERE r.repository_id = s.repository_id AND r.virtual_storage = $1 "
                        "AND ($2 = '' OR s.storage = $2) AND s.verified_at IS NOT NULL",
                        {P(selector.virtual_storage), P(selector.storage)}, Deadline());
  if (!rows.ok()) return rows.status();
  return rows->affected;
}

}  // namespace praefect::datastore
