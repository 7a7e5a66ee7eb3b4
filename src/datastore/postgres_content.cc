// PostgresDatastore as the ContentVerificationStore: the shared walk
// (content_verification, migration 0008) and the marking of a replica whose
// content differs from its primary's.
#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {
namespace sql {

// Moves the cursor past the next $1 repositories and returns them with their
// up-to-date storages; `moved` always returns its one row, so a batch whose
// repositories were all skipped still reports the passes. The cursor is a
// scalar subquery, not a join with `cur`: then it is the index scan's start
// (Index Cond) and a claim reads its batch wherever the walk stands; joined,
// it was a filter on a scan from the first repository, so a pass over N
// repositories cost O(N^2) (at 1,000,000 repositories, 270 ms per claim at
// the end of the walk instead of 0.4 ms; bench/content-verification).
const char* const kContentClaim = R"(
WITH cur AS MATERIALIZED (
  SELECT next_repository_id AS next FROM content_verification WHERE id = 1 FOR UPDATE
), batch AS MATERIALIZED (
  SELECT r.repository_id FROM repositories r WHERE r.repository_id >= (SELECT next FROM cur)
  ORDER BY r.repository_id LIMIT $1
), n AS MATERIALIZED (
  SELECT count(*) AS found, max(repository_id) AS last FROM batch
), moved AS (
  -- A short batch reached the end: the walk starts over (a pass is done
  -- unless there was nothing to walk at all).
  UPDATE content_verification c
  SET next_repository_id = CASE WHEN n.found < $1 THEN 0 ELSE n.last + 1 END,
      passes = c.passes + CASE WHEN n.found < $1 AND (cur.next > 0 OR n.found > 0) THEN 1 ELSE 0 END,
      pass_started_at = CASE WHEN cur.next = 0 THEN now() ELSE c.pass_started_at END
  FROM cur, n WHERE c.id = 1
  RETURNING c.passes, n.found < $1 AND (cur.next > 0 OR n.found > 0) AS ended
), candidates AS (
  SELECT r.repository_id, r.virtual_storage, r.relative_path, r.replica_path, r."primary", r.generation,
         (SELECT array_agg(s.storage ORDER BY s.storage) FROM storage_repositories s
          WHERE s.repository_id = r.repository_id AND s.generation = r.generation) AS up_to_date
  FROM batch JOIN repositories r USING (repository_id)
  WHERE r.generation IS NOT NULL
    -- Being replicated or repaired: its replicas are about to change.
    AND NOT EXISTS (SELECT 1 FROM replication_queue q
                    WHERE (q.job->>'repository_id')::bigint = r.repository_id
                      AND q.state NOT IN ('completed', 'dead', 'cancelled'))
    -- The primary is the reference: it must hold the latest generation.
    AND EXISTS (SELECT 1 FROM storage_repositories p
                WHERE p.repository_id = r.repository_id AND p.storage = r."primary" AND p.generation = r.generation)
)
SELECT moved.passes, moved.ended, c.repository_id, c.virtual_storage, c.relative_path, c.replica_path, c."primary", c.generation,
       c.up_to_date
FROM moved LEFT JOIN candidates c ON true
ORDER BY c.repository_id)";

}  // namespace sql

using sql::P;

StatusOr<ContentBatch> PostgresDatastore::ClaimContentBatch(int count) {
  auto rows = pool_->Exec(sql::kContentClaim, {P(static_cast<int64_t>(count))}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return FailedPrecondition("the content_verification row is missing: run praefect sql-migrate");
  ContentBatch out;
  auto passes = rows->Int64(0, 0);
  if (!passes.ok()) return passes.status();
  out.passes = *passes;
  out.ended_pass = rows->Text(0, 1) == "t";
  for (size_t i = 0; i < rows->size(); ++i) {
    if (rows->IsNull(i, 2)) continue;
    ContentCandidate c;
    auto id = rows->Int64(i, 2);
    auto generation = rows->Int64(i, 7);
    if (!id.ok()) return id.status();
    if (!generation.ok()) return generation.status();
    c.repository_id = *id;
    c.virtual_storage = rows->Text(i, 3);
    c.relative_path = rows->Text(i, 4);
    c.replica_path = rows->Text(i, 5);
    c.primary = rows->Text(i, 6);
    c.generation = *generation;
    c.up_to_date = ParseTextArray(rows->Text(i, 8));
    out.repositories.push_back(std::move(c));
  }
  return out;
}

StatusOr<bool> PostgresDatastore::MarkContentMismatch(int64_t repository_id, std::string_view storage,
                                                     int64_t generation, std::string_view primary,
                                                     std::string_view correlation_id) {
  // The repository row is locked first, as by every statement that changes
  // generations (RecordWrite waits for this one, or this one for it and then
  // finds the generation moved on and changes nothing).
  const std::string sql = R"(
WITH r AS MATERIALIZED (
  SELECT repository_id, virtual_storage, relative_path, replica_path FROM repositories
  WHERE repository_id = $1 AND generation = $3
  FOR NO KEY UPDATE
), source AS MATERIALIZED (
  SELECT s.storage FROM storage_repositories s JOIN r USING (repository_id)
  WHERE s.storage = $4 AND s.generation = $3
  FOR NO KEY UPDATE OF s
), lowered AS (
  UPDATE storage_repositories s SET generation = $3 - 1
  FROM r WHERE s.repository_id = r.repository_id AND s.storage = $2 AND s.generation = $3
    AND EXISTS (SELECT 1 FROM source) AND $2 <> $4
  RETURNING s.repository_id
), jobs AS (
  INSERT INTO replication_queue (lock_id, job, meta)
  SELECT )" + std::string(sql::kLockId) +
                          ", " + sql::UpdateJob("$4::text") + R"(, jsonb_build_object('correlation_id', $5::text)
  FROM r, (SELECT $2::text AS t) AS target
  WHERE EXISTS (SELECT 1 FROM lowered)
)
SELECT count(*) FROM lowered)";
  auto rows = pool_->Exec(sql, {P(repository_id), P(storage), P(generation), P(primary), P(correlation_id)},
                          Deadline());
  if (!rows.ok()) return rows.status();
  auto n = rows->Int64(0, 0);
  if (!n.ok()) return n.status();
  return *n > 0;
}

}  // namespace praefect::datastore
