// PostgresDatastore as the VerificationStore: leases on the replicas due
// for a check (storage_repositories.verification_leased_until), the checks'
// results (verified_at, and removal of the records of missing replicas),
// and the release of leases a dead praefect left behind. Only verification
// columns change or records go away: the change-notification trigger
// (migrations 0002, 0005) ignores updates that touch neither generation nor
// path, so verification never flushes the praefects' read caches; a
// removed record is notified, as it must be.
#include <string>
#include <vector>

#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {
namespace {

using sql::P;

postgres::Param Millis(std::chrono::milliseconds d) { return std::to_string(d.count()); }

// The due replicas of the healthy pairs ($1[i], $2[i]), never verified
// first, then verified longest ago (before now - $3 ms), at most $4, leased
// until now + $5 ms. Each kind is its own scan of the verification_queue
// index (verified_at NULLS FIRST, unleased rows) that stops after $4 rows:
// Praefect's single scan for "verified_at IS NULL OR verified_at < ..."
// reads and sorts every due replica for each batch of 25. Over 900,000
// replicas (PostgreSQL 15, 2 cores): 7 ms a batch with 300,000 due after a
// `praefect verify` of a storage (Praefect's statement: 290-350 ms), 7-19 ms
// with 150,000 expired (140-250 ms); 0.3-0.5 s (1.3-1.8 s) when the 300,000
// are on a storage that is down, whose rows both still walk past. The
// second scan orders NULLS FIRST as the index does, or PostgreSQL sorts
// every expired row instead. Rows others hold are skipped (SKIP LOCKED);
// a row the second scan locks beyond what the limit keeps is let go with
// the statement.
constexpr const char* kLeaseSql = R"(
WITH healthy AS (
  SELECT * FROM unnest($1::text[], $2::text[]) AS h(virtual_storage, storage)
), never AS MATERIALIZED (
  SELECT s.repository_id, s.storage, s.verified_at
  FROM storage_repositories s
  JOIN healthy h ON h.virtual_storage = s.virtual_storage AND h.storage = s.storage
  WHERE s.verification_leased_until IS NULL AND s.verified_at IS NULL
  LIMIT $4::bigint
  FOR NO KEY UPDATE OF s SKIP LOCKED
), expired AS MATERIALIZED (
  SELECT s.repository_id, s.storage, s.verified_at
  FROM storage_repositories s
  JOIN healthy h ON h.virtual_storage = s.virtual_storage AND h.storage = s.storage
  WHERE s.verification_leased_until IS NULL AND s.verified_at < now() - $3::bigint * interval '1 millisecond'
  ORDER BY s.verified_at NULLS FIRST
  LIMIT $4::bigint
  FOR NO KEY UPDATE OF s SKIP LOCKED
), picked AS (
  SELECT * FROM never UNION ALL SELECT * FROM expired LIMIT $4::bigint
), leased AS (
  UPDATE storage_repositories s
  SET verification_leased_until = now() + $5::bigint * interval '1 millisecond'
  FROM picked p
  WHERE s.repository_id = p.repository_id AND s.storage = p.storage
  RETURNING s.repository_id, s.storage, s.generation, p.verified_at
)
SELECT l.repository_id, r.virtual_storage, r.relative_path, r.replica_path, l.storage, l.generation
FROM leased l JOIN repositories r USING (repository_id)
ORDER BY l.verified_at NULLS FIRST, l.repository_id, l.storage)";

// The results ($1 repository ids, $2 storages, $3 generations when leased,
// $4 answered, $5 exists; $6 delete invalid records). The repositories'
// rows are locked first, in id order, as every statement that changes a
// repository's replica records locks them (no deadlock, no interleaving
// with a write's generation bump). A record that no longer has the leased
// generation was written since the check (a replication made the replica
// again): it is not removed, and stays unverified to be checked again.
constexpr const char* kRecordSql = R"(
WITH results AS (
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::boolean[], $5::boolean[])
    AS t(repository_id, storage, generation, answered, found)
), locked AS MATERIALIZED (
  SELECT r.repository_id FROM repositories r
  WHERE r.repository_id IN (SELECT repository_id FROM results)
  ORDER BY r.repository_id
  FOR UPDATE
), judged AS MATERIALIZED (
  SELECT t.*, s.generation = t.generation AS unchanged,
         t.answered AND NOT t.found AND $6::boolean AND s.generation = t.generation AS remove
  FROM results t
  JOIN locked USING (repository_id)
  JOIN storage_repositories s ON s.repository_id = t.repository_id AND s.storage = t.storage
), removed AS (
  DELETE FROM storage_repositories s
  USING judged j
  WHERE s.repository_id = j.repository_id AND s.storage = j.storage AND j.remove
  RETURNING 1
), released AS (
  UPDATE storage_repositories s
  SET verification_leased_until = NULL,
      verified_at = CASE WHEN j.answered AND (j.found OR j.unchanged) THEN now() ELSE s.verified_at END
  FROM judged j
  WHERE s.repository_id = j.repository_id AND s.storage = j.storage AND NOT j.remove
  RETURNING 1
)
SELECT (SELECT count(*) FROM removed),
       (SELECT count(*) FROM judged WHERE answered AND NOT found AND NOT unchanged),
       (SELECT count(*) FROM released))";

// Leases that ended more than $1 ms ago, at most $2, skipping rows others
// hold (the verification_leases index, migration 0008, finds them without
// reading the table).
constexpr const char* kReleaseSql = R"(
WITH stale AS (
  SELECT s.repository_id, s.storage
  FROM storage_repositories s
  WHERE s.verification_leased_until < now() - $1::bigint * interval '1 millisecond'
  LIMIT $2::bigint
  FOR NO KEY UPDATE SKIP LOCKED
), released AS (
  UPDATE storage_repositories s
  SET verification_leased_until = NULL
  FROM stale t
  WHERE s.repository_id = t.repository_id AND s.storage = t.storage
  RETURNING s.repository_id, s.storage
)
SELECT l.repository_id, r.virtual_storage, r.relative_path, r.replica_path, l.storage
FROM released l JOIN repositories r USING (repository_id)
ORDER BY r.virtual_storage, r.relative_path, l.storage)";

// A bigint[] or boolean[] literal; TextArray quotes each element, which
// PostgreSQL reads as the element's text.
std::string Ints(const std::vector<VerificationResult>& results, bool generation) {
  std::vector<std::string> values;
  values.reserve(results.size());
  for (const auto& r : results) values.push_back(std::to_string(generation ? r.job.generation : r.job.repository_id));
  return TextArray(values);
}

std::string Bools(const std::vector<VerificationResult>& results, bool exists) {
  std::vector<std::string> values;
  values.reserve(results.size());
  for (const auto& r : results) values.push_back((exists ? r.exists : r.answered) ? "t" : "f");
  return TextArray(values);
}

StatusOr<std::vector<VerificationJob>> ReadJobs(const postgres::Rows& rows, bool with_generation) {
  std::vector<VerificationJob> out;
  out.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    VerificationJob job;
    auto id = rows.Int64(i, 0);
    if (!id.ok()) return id.status();
    job.repository_id = *id;
    job.virtual_storage = rows.Text(i, 1);
    job.relative_path = rows.Text(i, 2);
    job.replica_path = rows.Text(i, 3);
    job.storage = rows.Text(i, 4);
    if (with_generation) {
      auto generation = rows.Int64(i, 5);
      if (!generation.ok()) return generation.status();
      job.generation = *generation;
    }
    out.push_back(std::move(job));
  }
  return out;
}

}  // namespace

StatusOr<std::vector<VerificationJob>> PostgresDatastore::LeaseVerificationJobs(const StoragePairs& healthy,
                                                                                std::chrono::milliseconds interval,
                                                                                int limit,
                                                                                std::chrono::milliseconds lease) {
  if (healthy.empty() || limit <= 0) return std::vector<VerificationJob>();
  std::vector<std::string> vs, storages;
  for (const auto& pair : healthy) {
    vs.push_back(pair.first);
    storages.push_back(pair.second);
  }
  auto rows = pool_->Exec(kLeaseSql,
                          {TextArray(vs), TextArray(storages), Millis(interval), P(int64_t{limit}), Millis(lease)},
                          Deadline());
  if (!rows.ok()) return rows.status();
  return ReadJobs(*rows, true);
}

StatusOr<VerificationRecorded> PostgresDatastore::RecordVerification(const std::vector<VerificationResult>& results,
                                                                     bool delete_invalid) {
  VerificationRecorded out;
  if (results.empty()) return out;
  std::vector<std::string> storages;
  storages.reserve(results.size());
  for (const auto& r : results) storages.push_back(r.job.storage);
  auto rows = pool_->Exec(kRecordSql,
                          {Ints(results, false), TextArray(storages), Ints(results, true), Bools(results, false),
                           Bools(results, true), P(delete_invalid ? "t" : "f")},
                          Deadline());
  if (!rows.ok()) return rows.status();
  auto removed = rows->Int64(0, 0);
  if (!removed.ok()) return removed.status();
  auto changed = rows->Int64(0, 1);
  if (!changed.ok()) return changed.status();
  out.removed = *removed;
  out.changed = *changed;
  return out;
}

StatusOr<std::vector<VerificationJob>> PostgresDatastore::ReleaseStaleVerificationLeases(
    std::chrono::milliseconds expired_for, int limit) {
  auto rows = pool_->Exec(kReleaseSql, {Millis(expired_for), P(int64_t{limit})}, Deadline());
  if (!rows.ok()) return rows.status();
  return ReadJobs(*rows, false);
}

}  // namespace praefect::datastore
