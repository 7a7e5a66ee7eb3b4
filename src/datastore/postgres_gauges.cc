// PostgresDatastore as the GaugesStore: the statements behind /db_metrics,
// run at scrape time, never on the request path. Each is one scan of its
// table (repositories with their replicas, replication_queue,
// storage_repositories), as Praefect's collectors do.
#include <string>
#include <vector>

#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {
namespace {

using sql::P;

// Repositories with no valid primary: no replica at the latest generation
// on a storage healthy by quorum (within $1 ms) that is not being deleted
// and is assigned when any such replica is assigned (GetPrimary's rule, as
// Praefect's valid_primaries view with the configured window).
std::string UnavailableSql() {
  return "WITH " + sql::HealthyCtes(sql::WindowParam(1)) + R"(, candidates AS (
  SELECT r.repository_id,
         a.storage IS NOT NULL AS assigned,
         bool_or(a.storage IS NOT NULL) OVER (PARTITION BY r.repository_id) AS any_assigned
  FROM repositories r
  JOIN storage_repositories s ON s.repository_id = r.repository_id AND s.generation = COALESCE(r.generation, 0)
  JOIN healthy h ON h.virtual_storage = r.virtual_storage AND h.storage = s.storage
  LEFT JOIN repository_assignments a ON a.repository_id = r.repository_id AND a.storage = s.storage
  WHERE NOT EXISTS (
    SELECT 1 FROM replication_queue q
    WHERE q.state IN ('ready', 'in_progress', 'failed') AND q.job->>'change' = 'delete_replica'
      AND (q.job->>'repository_id')::bigint = r.repository_id AND q.job->>'target_node_storage' = s.storage)
), valid AS (
  SELECT DISTINCT repository_id FROM candidates WHERE assigned OR NOT any_assigned
)
SELECT r.virtual_storage, count(*)
FROM repositories r
WHERE NOT EXISTS (SELECT 1 FROM valid v WHERE v.repository_id = r.repository_id)
GROUP BY r.virtual_storage
ORDER BY 1)";
}

constexpr const char* kQueueSql = R"(
SELECT job->>'virtual_storage', job->>'target_node_storage', state::text, count(*)
FROM replication_queue
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3)";

constexpr const char* kVerificationSql = R"(
SELECT virtual_storage, storage,
       count(*) FILTER (WHERE verified_at IS NULL),
       count(*) FILTER (WHERE verified_at < now() - $1::bigint * interval '1 millisecond')
FROM storage_repositories
GROUP BY 1, 2
ORDER BY 1, 2)";

constexpr const char* kPrimariesSql = R"(
SELECT virtual_storage, "primary", count(*)
FROM repositories
WHERE "primary" IS NOT NULL
GROUP BY 1, 2
ORDER BY 1, 2)";

}  // namespace

StatusOr<DatabaseGauges> PostgresDatastore::QueryGauges(const GaugesQuery& query) {
  const postgres::Deadline deadline = postgres::Clock::now() + query.timeout;
  DatabaseGauges out;
  auto failed = [](std::string_view what, const Status& st) {
    return Status(st.code(), "reading " + std::string(what) + " from the database: " + st.message());
  };
  static const std::string unavailable_sql = UnavailableSql();
  auto rows = pool_->Exec(unavailable_sql, {P(static_cast<int64_t>(query.health_window.count()))}, deadline);
  if (!rows.ok()) return failed("unavailable repositories", rows.status());
  for (size_t i = 0; i < rows->size(); ++i) {
    auto n = rows->Int64(i, 1);
    if (!n.ok()) return n.status();
    out.unavailable.push_back({rows->Text(i, 0), *n});
  }
  rows = pool_->Exec(kQueueSql, {}, deadline);
  if (!rows.ok()) return failed("the replication queue's depth", rows.status());
  for (size_t i = 0; i < rows->size(); ++i) {
    auto n = rows->Int64(i, 3);
    if (!n.ok()) return n.status();
    out.replication_queue.push_back({rows->Text(i, 0), rows->Text(i, 1), rows->Text(i, 2), *n});
  }
  if (query.verification_interval.has_value()) {
    rows = pool_->Exec(kVerificationSql, {P(static_cast<int64_t>(query.verification_interval->count()))}, deadline);
    if (!rows.ok()) return failed("the verification queue's depth", rows.status());
    for (size_t i = 0; i < rows->size(); ++i) {
      auto unverified = rows->Int64(i, 2);
      auto expired = rows->Int64(i, 3);
      if (!unverified.ok()) return unverified.status();
      if (!expired.ok()) return expired.status();
      out.verification_queue.push_back({rows->Text(i, 0), rows->Text(i, 1), *unverified, *expired});
    }
  }
  rows = pool_->Exec(kPrimariesSql, {}, deadline);
  if (!rows.ok()) return failed("the repositories' primaries", rows.status());
  for (size_t i = 0; i < rows->size(); ++i) {
    auto n = rows->Int64(i, 2);
    if (!n.ok()) return n.status();
    out.primaries.push_back({rows->Text(i, 0), rows->Text(i, 1), *n});
  }
  return out;
}

}  // namespace praefect::datastore
