// PostgresDatastore as the ReconciliationStore: the round lease
// (reconciliation_lease, migration 0007) and the scheduling statement.
#include <algorithm>

#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {
namespace {

using sql::P;

postgres::Param Millis(std::chrono::milliseconds d) { return std::to_string(d.count()); }

// Praefect's reconciler takes this advisory lock (transaction-scoped, key 1)
// inside its scheduling statement. We take it in a statement of its own,
// first: a lock taken inside the statement is taken after the statement's
// snapshot, so a scheduler that waited on a lock the other committed under
// would not see the other's jobs and would schedule them again.
constexpr const char* kAdvisoryLock = "SELECT pg_try_advisory_xact_lock(1)";

// Which jobs to schedule (background-work.md §4), for the repositories with
// ids in [$3, $4], the locally healthy storages being ($1[i], $2[i]). Each
// part reads only that range (storage_repositories and
// repository_assignments by their primary keys, the queue by
// replication_queue_repository_id_index), so a statement's cost follows the
// range, not the cluster.
constexpr const char* kScheduleSql = R"(
WITH healthy AS (
  SELECT * FROM unnest($1::text[], $2::text[]) AS h(virtual_storage, storage)
), repos AS MATERIALIZED (
  SELECT r.repository_id, r.virtual_storage, r.relative_path, r.replica_path
  FROM repositories r
  WHERE r.repository_id BETWEEN $3 AND $4 AND r.virtual_storage IN (SELECT virtual_storage FROM healthy)
), replicas AS MATERIALIZED (
  SELECT s.repository_id, s.storage, s.generation FROM storage_repositories s
  WHERE s.repository_id BETWEEN $3 AND $4
), assigned AS MATERIALIZED (
  SELECT a.repository_id, a.storage FROM repository_assignments a WHERE a.repository_id BETWEEN $3 AND $4
), latest AS MATERIALIZED (
  SELECT repository_id, max(generation) AS generation FROM replicas GROUP BY repository_id
), active AS MATERIALIZED (
  -- "Active": not completed, dead or cancelled (ready, in_progress, failed).
  SELECT (q.job->>'repository_id')::bigint AS repository_id, q.job->>'change' AS change,
         COALESCE(q.job->>'source_node_storage', '') AS source, q.job->>'target_node_storage' AS target
  FROM replication_queue q
  WHERE (q.job->>'repository_id')::bigint BETWEEN $3 AND $4 AND q.state NOT IN ('completed', 'dead', 'cancelled')
), update_targets AS (
  -- A healthy storage that should hold the repository (assigned, or any
  -- when it has no assignments) whose replica is missing or outdated, with
  -- no active update job of its own.
  SELECT r.repository_id, r.virtual_storage, r.relative_path, r.replica_path, h.storage AS target
  FROM repos r
  JOIN latest l USING (repository_id)
  JOIN healthy h ON h.virtual_storage = r.virtual_storage
  LEFT JOIN replicas s ON s.repository_id = r.repository_id AND s.storage = h.storage
  WHERE (s.generation IS NULL OR s.generation <> l.generation)
    AND (NOT EXISTS (SELECT 1 FROM assigned a WHERE a.repository_id = r.repository_id)
         OR EXISTS (SELECT 1 FROM assigned a WHERE a.repository_id = r.repository_id AND a.storage = h.storage))
    AND NOT EXISTS (SELECT 1 FROM active j
                    WHERE j.repository_id = r.repository_id AND j.change = 'update' AND j.target = h.storage)
), update_jobs AS (
  -- From a random healthy replica at the latest generation that is not
  -- being deleted.
  SELECT DISTINCT ON (t.repository_id, t.target) t.*, src.storage AS source
  FROM update_targets t
  JOIN latest l USING (repository_id)
  JOIN replicas src ON src.repository_id = t.repository_id AND src.generation = l.generation
  JOIN healthy h ON h.virtual_storage = t.virtual_storage AND h.storage = src.storage
  WHERE NOT EXISTS (SELECT 1 FROM active j
                    WHERE j.repository_id = t.repository_id AND j.change = 'delete_replica'
                      AND j.target = src.storage)
  ORDER BY t.repository_id, t.target, random()
), delete_jobs AS (
  -- At most one per repository: a healthy replica on an unassigned storage
  -- of a repository with assignments, no newer than any assigned replica
  -- (a missing assigned replica counts as -1: nothing is deleted before
  -- every assigned storage holds the repository), that no active job of
  -- the repository reads or writes, and no deletion pending for it.
  SELECT DISTINCT ON (r.repository_id) r.repository_id, r.virtual_storage, r.relative_path, r.replica_path,
         s.storage AS target
  FROM repos r
  JOIN replicas s USING (repository_id)
  JOIN healthy h ON h.virtual_storage = r.virtual_storage AND h.storage = s.storage
  WHERE EXISTS (SELECT 1 FROM assigned a WHERE a.repository_id = r.repository_id)
    AND NOT EXISTS (SELECT 1 FROM assigned a WHERE a.repository_id = r.repository_id AND a.storage = s.storage)
    AND s.generation <= (SELECT min(COALESCE(s2.generation, -1))
                         FROM assigned a LEFT JOIN replicas s2 USING (repository_id, storage)
                         WHERE a.repository_id = r.repository_id)
    AND NOT EXISTS (SELECT 1 FROM active j
                    WHERE j.repository_id = r.repository_id
                      AND (j.change = 'delete_replica' OR j.source = s.storage OR j.target = s.storage))
  ORDER BY r.repository_id, random()
), jobs AS (
  SELECT 'update' AS change, repository_id, virtual_storage, relative_path, replica_path, source, target
  FROM update_jobs
  UNION ALL
  SELECT 'delete_replica', repository_id, virtual_storage, relative_path, replica_path, NULL, target
  FROM delete_jobs
), with_ids AS MATERIALIZED (
  -- Praefect's correlation id of a reconciliation job: base64 of a random
  -- number's text.
  SELECT j.*, virtual_storage || '|' || target || '|' || relative_path AS lock_id,
         encode(convert_to(floor(random() * 9007199254740991)::bigint::text, 'UTF8'), 'base64') AS correlation_id
  FROM jobs j
), locks AS (
  INSERT INTO replication_queue_lock (id) SELECT DISTINCT lock_id FROM with_ids ON CONFLICT (id) DO NOTHING
), inserted AS (
  INSERT INTO replication_queue (lock_id, job, meta)
  SELECT lock_id,
         jsonb_build_object('change', change, 'repository_id', repository_id, 'virtual_storage', virtual_storage,
                            'relative_path', relative_path, 'replica_path', replica_path,
                            'source_node_storage', source, 'target_node_storage', target),
         jsonb_build_object('correlation_id', correlation_id)
  FROM with_ids
)
SELECT change, repository_id, virtual_storage, relative_path, COALESCE(source, ''), target, correlation_id
FROM with_ids ORDER BY repository_id, target)";

}  // namespace

StatusOr<RoundLease> PostgresDatastore::TryStartReconciliation(std::string_view holder,
                                                               std::chrono::milliseconds interval,
                                                               std::optional<std::chrono::milliseconds> returned_ago,
                                                               std::chrono::milliseconds lease) {
  // Due: no round started within the interval or, after a node returned,
  // none since (a round that started within 2 s of the return may have run
  // on praefects whose health checks had not yet seen the node: not
  // counted).
  constexpr int64_t kGraceMs = 2000;
  const int64_t since_return = returned_ago ? std::max<int64_t>(returned_ago->count() - kGraceMs, 0) : -1;
  auto rows = pool_->Exec(R"(
WITH current AS (
  SELECT holder, leased_until, started_at FROM reconciliation_lease WHERE id = 1 FOR UPDATE
), taken AS (
  UPDATE reconciliation_lease l
  SET holder = $1, leased_until = now() + $4::bigint * interval '1 millisecond', started_at = now(), ended_at = NULL
  FROM current c
  WHERE l.id = 1
    AND (c.leased_until IS NULL OR c.leased_until < now() OR c.holder = $1)
    AND (c.started_at IS NULL OR c.started_at <= now() - $2::bigint * interval '1 millisecond'
         OR ($3::bigint >= 0 AND c.started_at < now() - $3::bigint * interval '1 millisecond'))
  RETURNING 1
)
SELECT (SELECT count(*) FROM taken), COALESCE(c.holder, ''), c.leased_until IS NOT NULL AND c.leased_until >= now(),
       (extract(epoch FROM now() - c.started_at) * 1000)::bigint
FROM current c)",
                          {P(holder), Millis(interval), P(since_return), Millis(lease)}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->empty())
    return FailedPrecondition("the reconciliation_lease row is missing: run praefect sql-migrate");
  RoundLease out;
  auto taken = rows->Int64(0, 0);
  if (!taken.ok()) return taken.status();
  out.leader = *taken > 0;
  if (!out.leader && rows->Text(0, 2) == "t") out.holder = rows->Text(0, 1);
  if (!rows->IsNull(0, 3)) {
    auto ago = rows->Int64(0, 3);
    if (!ago.ok()) return ago.status();
    out.last_started_ago = std::chrono::milliseconds(*ago);
  }
  if (out.leader) out.last_started_ago = std::chrono::milliseconds(0);
  return out;
}

Status PostgresDatastore::RenewReconciliation(std::string_view holder, std::chrono::milliseconds lease) {
  auto rows = pool_->Exec(
      "UPDATE reconciliation_lease SET leased_until = now() + $2::bigint * interval '1 millisecond' "
      "WHERE id = 1 AND holder = $1 AND ended_at IS NULL",
      {P(holder), Millis(lease)}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->affected == 0)
    return FailedPrecondition("the reconciliation lease of " + std::string(holder) +
                              " expired and another praefect took it");
  return Status::Ok();
}

Status PostgresDatastore::EndReconciliation(std::string_view holder) {
  return pool_
      ->Exec("UPDATE reconciliation_lease SET leased_until = NULL, ended_at = now() WHERE id = 1 AND holder = $1",
             {P(holder)}, Deadline())
      .status();
}

StatusOr<std::optional<std::pair<int64_t, int64_t>>> PostgresDatastore::RepositoryIdRange() {
  auto rows = pool_->Exec("SELECT min(repository_id), max(repository_id) FROM repositories", {}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->empty() || rows->IsNull(0, 0)) return std::optional<std::pair<int64_t, int64_t>>();
  auto lo = rows->Int64(0, 0);
  auto hi = rows->Int64(0, 1);
  if (!lo.ok()) return lo.status();
  if (!hi.ok()) return hi.status();
  return std::optional<std::pair<int64_t, int64_t>>(std::make_pair(*lo, *hi));
}

StatusOr<std::vector<ScheduledJob>> PostgresDatastore::ScheduleReconciliation(const StoragePairs& healthy,
                                                                              int64_t first, int64_t last) {
  std::vector<std::string> vs, storages;
  for (const auto& [v, s] : healthy) {
    vs.push_back(v);
    storages.push_back(s);
  }
  // One transaction on one connection: the advisory lock first, then the
  // statement (a fresh snapshot under READ COMMITTED, after the lock).
  // The planner's JIT costs seconds on this statement and saves nothing.
  // Nested loops: the CTEs' row estimates are tiny (fresh tables, CTE scans),
  // and nested loops over them grew with the cube of the range (4.6 s for
  // 200 repositories); hash joins take 17 ms for those, 0.77 s for a range
  // of 10,000 repositories that all need a job, 0.15 s when none does.
  const auto deadline = postgres::Clock::now() + std::max(call_timeout_, std::chrono::milliseconds(60000));
  auto lease = pool_->Acquire(deadline);
  if (!lease.ok()) return lease.status();
  postgres::Connection& conn = **lease;
  auto rollback = [&](Status st) {
    if (!conn.broken()) (void)conn.ExecScript("ROLLBACK", deadline);
    return st;
  };
  if (Status st = conn.ExecScript("BEGIN; SET LOCAL jit = off; SET LOCAL enable_nestloop = off; SET LOCAL statement_timeout = '60s'", deadline); !st.ok()) return rollback(st);
  auto locked = conn.Exec(kAdvisoryLock, {}, deadline);
  if (!locked.ok()) return rollback(locked.status());
  if (locked->Text(0, 0) != "t")
    return rollback(Status(StatusCode::kAborted, "another reconciliation is scheduling jobs (advisory lock 1)"));
  auto rows = conn.Exec(kScheduleSql, {TextArray(vs), TextArray(storages), P(first), P(last)}, deadline);
  if (!rows.ok()) return rollback(rows.status());
  std::vector<ScheduledJob> out;
  for (size_t i = 0; i < rows->size(); ++i) {
    ScheduledJob job;
    job.change = rows->Text(i, 0) == "delete_replica" ? ChangeType::kDeleteReplica : ChangeType::kUpdate;
    auto id = rows->Int64(i, 1);
    if (!id.ok()) return rollback(id.status());
    job.repository_id = *id;
    job.virtual_storage = rows->Text(i, 2);
    job.relative_path = rows->Text(i, 3);
    job.source_storage = rows->Text(i, 4);
    job.target_storage = rows->Text(i, 5);
    job.correlation_id = rows->Text(i, 6);
    out.push_back(std::move(job));
  }
  if (Status st = conn.ExecScript("COMMIT", deadline); !st.ok()) return rollback(st);
  return out;
}

StatusOr<std::vector<PendingRepair>> PostgresDatastore::PendingRepairs(const std::vector<ScheduledJob>& jobs) {
  std::vector<PendingRepair> out;
  if (jobs.empty()) return out;
  std::vector<std::string> ids, storages, changes;
  for (const ScheduledJob& job : jobs) {
    ids.push_back(std::to_string(job.repository_id));
    storages.push_back(job.target_storage);
    changes.push_back(std::string(ChangeTypeName(job.change)));
  }
  auto rows = pool_->Exec(R"(
SELECT t.n,
       EXISTS (SELECT 1 FROM replication_queue q
               WHERE (q.job->>'repository_id')::bigint = t.id AND q.job->>'target_node_storage' = t.storage
                 AND q.state NOT IN ('completed', 'dead', 'cancelled'))
FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY AS t(id, storage, change, n)
JOIN repositories r ON r.repository_id = t.id
LEFT JOIN storage_repositories s ON s.repository_id = t.id AND s.storage = t.storage
WHERE (t.change = 'delete_replica' AND s.storage IS NOT NULL)
   OR (t.change <> 'delete_replica' AND (s.generation IS NULL OR s.generation < r.generation))
ORDER BY t.n)",
                          {TextArray(ids), TextArray(storages), TextArray(changes)}, Deadline());
  if (!rows.ok()) return rows.status();
  for (size_t i = 0; i < rows->size(); ++i) {
    auto n = rows->Int64(i, 0);
    if (!n.ok()) return n.status();
    out.push_back(PendingRepair{jobs.at(static_cast<size_t>(*n - 1)), rows->Text(i, 1) == "t"});
  }
  return out;
}

StatusOr<int64_t> PostgresDatastore::ActiveReplicationJobs() {
  auto rows = pool_->Exec("SELECT count(*) FROM replication_queue WHERE state IN ('ready', 'in_progress', 'failed')",
                          {}, Deadline());
  if (!rows.ok()) return rows.status();
  return rows->Int64(0, 0);
}

}  // namespace praefect::datastore
