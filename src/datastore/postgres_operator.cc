// PostgresDatastore as the OperatorStore: the per-replica view of dataloss
// and metadata (assigned, healthy, valid primary, as the election sees
// them), accept-dataloss and verify's MarkUnverified.
#include "datastore/postgres_datastore.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <future>
#include <optional>

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

// The repositories of virtual storage $2 with ids in [$3, $4) that may have
// an assigned replica that is not a valid primary, for ReplicaViewSql to
// judge exactly: cheap enough to run over every repository (one pass over
// storage_repositories' (repository_id, storage) INCLUDE (generation)
// index, migration 0006), never missing one. $1 is the health window, $6
// whether partially unavailable repositories are listed. The virtual
// storage's `storages` configured storages are $7, $8, ...; each is a bit
// of a mask ($5: all of them), for the storages holding a replica,
// assigned, or healthy. Judged: the repositories whose replicas'
// generations differ or are not the repository's, those with a replica
// being deleted, and, when the replicas are all at the repository's
// generation, those where an assigned storage lacks a healthy one ($6), or
// where no healthy storage has one (not $6: no valid primary). With more
// than 62 storages every repository of the range is judged.
std::string DatalossSuspectsSql(size_t storages) {
  if (storages > 62) {
    return "SELECT repository_id FROM repositories WHERE virtual_storage = $2 AND repository_id >= $3 AND "
           "repository_id < $4 AND $1::bigint IS NOT NULL AND $5::bigint IS NOT NULL AND $6::boolean IS NOT NULL";
  }
  std::string bit = "CASE storage";
  for (size_t i = 0; i < storages; ++i)
    bit += " WHEN $" + std::to_string(7 + i) + " THEN " + std::to_string(int64_t{1} << i);
  bit += " ELSE 0 END";
  if (storages == 0) bit = "0";
  return "WITH " + sql::HealthyCtes(sql::WindowParam(1)) + R"(
SELECT r.repository_id
FROM repositories r
LEFT JOIN (SELECT repository_id, min(generation) AS lowest, max(generation) AS highest,
                  bit_or()" + bit + R"() AS held
           FROM storage_repositories WHERE repository_id >= $3 AND repository_id < $4
           GROUP BY repository_id) s USING (repository_id)
LEFT JOIN (SELECT repository_id, bit_or()" + bit + R"() AS wanted
           FROM repository_assignments WHERE repository_id >= $3 AND repository_id < $4
           GROUP BY repository_id) a USING (repository_id)
CROSS JOIN (SELECT COALESCE(bit_or()" + bit + R"(), 0) AS mask FROM healthy WHERE virtual_storage = $2) h
WHERE r.virtual_storage = $2 AND r.repository_id >= $3 AND r.repository_id < $4
  AND (s.highest IS DISTINCT FROM r.generation OR s.lowest <> s.highest
       OR CASE WHEN $6::boolean THEN (COALESCE(NULLIF(a.wanted, 0), $5::bigint) & ~(COALESCE(s.held, 0) & h.mask)) <> 0
               ELSE (COALESCE(s.held, 0) & h.mask) = 0 END)
UNION
SELECT (job->>'repository_id')::bigint FROM replication_queue
WHERE state IN ('ready', 'in_progress', 'failed') AND job->>'change' = 'delete_replica'
  AND job->>'virtual_storage' = $2
  AND (job->>'repository_id')::bigint >= $3 AND (job->>'repository_id')::bigint < $4
ORDER BY 1)";
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

Status PostgresDatastore::ForEachDataloss(std::string_view virtual_storage, bool include_partially_unavailable,
                                          const ConfiguredStorages& configured, std::chrono::milliseconds window,
                                          const DatalossPage& page) {
  // Not a structured binding: the lambdas below capture them (clang 14).
  const std::pair<std::string, std::string> arrays = ConfiguredArrays(configured);
  const std::string& vs = arrays.first;
  const std::string& storages = arrays.second;
  std::vector<std::string> mine;
  for (const auto& [v, s] : configured)
    if (v == virtual_storage) mine.push_back(s);
  const std::string suspects_sql = DatalossSuspectsSql(mine.size());
  const std::string view_sql = ReplicaViewSql("SELECT unnest($4::bigint[]) AS repository_id");
  const int64_t all_storages = mine.size() <= 62 ? (int64_t{1} << mine.size()) - 1 : 0;
  // An operator's scan, not the data path: each statement may take up to a
  // minute (a loaded database, statistics not yet updated after a bulk
  // load) before it counts as the database not answering.
  const std::chrono::milliseconds limit = std::max<std::chrono::milliseconds>(call_timeout_, std::chrono::minutes(1));
  auto deadline = [limit] { return postgres::Clock::now() + limit; };

  // The ids of the repositories of [lo, hi) that DatalossSuspectsSql picks.
  auto suspects_of = [&](int64_t lo, int64_t hi) -> StatusOr<std::vector<std::string>> {
    std::vector<postgres::Param> params = {P(static_cast<int64_t>(window.count())), P(virtual_storage), P(lo),
                                           P(hi), P(all_storages),
                                           std::string(include_partially_unavailable ? "true" : "false")};
    if (mine.size() <= 62)
      for (const std::string& s : mine) params.push_back(P(s));
    auto rows = pool_->Exec(suspects_sql, params, deadline());
    if (!rows.ok()) return rows.status();
    std::vector<std::string> ids;
    ids.reserve(rows->size());
    for (size_t i = 0; i < rows->size(); ++i) ids.push_back(rows->Text(i, 0));
    return ids;
  };
  // Suspects are judged with the view a batch at a time (1,000 by
  // default): index probes for each, a bounded result per statement (a
  // whole range, when a storage is down, made PostgreSQL scan whole
  // tables), and a page for `page` per batch, so that what is held stays
  // small however many are listed. The listed ones of ids[first, +batch).
  const size_t batch = static_cast<size_t>(std::max<int64_t>(2, dataloss_page_ / 50));
  auto judge_batch = [&](const std::vector<std::string>& ids,
                         size_t first) -> StatusOr<std::vector<RepositoryStatus>> {
    std::vector<std::string> some(ids.begin() + static_cast<std::ptrdiff_t>(first),
                                  ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), first + batch)));
    auto rows = pool_->Exec(view_sql, {vs, storages, P(static_cast<int64_t>(window.count())), TextArray(some)},
                            deadline());
    if (!rows.ok()) return rows.status();
    auto statuses = StatusesFromRows(*rows);
    if (!statuses.ok()) return statuses.status();
    std::vector<RepositoryStatus> out;
    for (RepositoryStatus& repo : *statuses) {
      bool partially = false;
      for (const ReplicaStatus& r : repo.replicas) partially = partially || (r.assigned && !r.valid_primary);
      if (!partially) continue;
      if (!include_partially_unavailable && !repo.Unavailable()) continue;
      out.push_back(std::move(repo));
    }
    return out;
  };
  // A range's suspects and the judgement of their first batch (usually all
  // of them), made ahead of the range before it.
  struct Range {
    std::vector<std::string> ids;
    std::vector<RepositoryStatus> first;
  };
  // Set once `page` or a statement failed (the client went away): the
  // ranges read ahead stop at once instead of holding connections.
  std::atomic<bool> stop{false};
  auto start_range = [&](int64_t lo, int64_t hi) -> StatusOr<Range> {
    if (stop.load()) return Range();
    auto ids = suspects_of(lo, hi);
    if (!ids.ok()) return ids.status();
    Range r;
    r.ids = std::move(ids).value();
    if (r.ids.empty() || stop.load()) return r;
    auto first = judge_batch(r.ids, 0);
    if (!first.ok()) return first.status();
    r.first = std::move(first).value();
    return r;
  };
  auto finish_range = [&](Range r) -> Status {
    if (!r.first.empty()) {
      if (Status st = page(std::move(r.first)); !st.ok()) return st;
    }
    for (size_t first = batch; first < r.ids.size(); first += batch) {
      auto out = judge_batch(r.ids, first);
      if (!out.ok()) return out.status();
      if (out->empty()) continue;
      if (Status st = page(std::move(out).value()); !st.ok()) return st;
    }
    return Status::Ok();
  };

  // Ranges of ids of about dataloss_page_ repositories each (even when ids
  // have gaps: then some ranges hold fewer).
  auto bounds = pool_->Exec("SELECT min(repository_id), max(repository_id), count(*) FROM repositories", {},
                            deadline());
  if (!bounds.ok()) return bounds.status();
  if (bounds->IsNull(0, 0)) return Status::Ok();
  auto lowest = bounds->Int64(0, 0), highest = bounds->Int64(0, 1), count = bounds->Int64(0, 2);
  if (!lowest.ok()) return lowest.status();
  if (!highest.ok()) return highest.status();
  if (!count.ok()) return count.status();
  const int64_t pages = std::max<int64_t>(1, (*count + dataloss_page_ - 1) / dataloss_page_);
  const int64_t span = (*highest - *lowest + 1 + pages - 1) / pages;

  // Up to two ranges are read (their suspects and first batch) on
  // connections of their own, so that PostgreSQL uses two cores, while this
  // thread passes on the oldest and judges the rest of its suspects, in id
  // order: at most three connections, and three batches' records held.
  constexpr size_t kAhead = 2;
  std::deque<std::future<StatusOr<Range>>> ahead;
  Status failed = Status::Ok();
  auto take = [&] {
    auto range = ahead.front().get();
    ahead.pop_front();
    if (!failed.ok()) return;
    failed = range.ok() ? finish_range(std::move(range).value()) : range.status();
    if (!failed.ok()) stop = true;
  };
  for (int64_t lo = *lowest; lo <= *highest && failed.ok(); lo += span) {
    const int64_t hi = *highest - lo < span ? *highest + 1 : lo + span;
    if (ahead.size() == kAhead) take();
    if (!failed.ok()) break;
    ahead.push_back(std::async(std::launch::async, start_range, lo, hi));
  }
  while (!ahead.empty()) take();
  return failed;
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
