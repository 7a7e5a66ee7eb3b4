// PostgresDatastore as the StorageCleanupStore: the storages' turns for
// repository cleanup (storage_cleanups, migration 0010), as Praefect's
// repocleaner keeps them.
#include "datastore/postgres_datastore.h"
#include "datastore/postgres_sql.h"

namespace praefect::datastore {
namespace {

using sql::P;

postgres::Param Millis(std::chrono::milliseconds d) { return P(static_cast<int64_t>(d.count())); }

// The (virtual storage, storage) pairs as two parallel text arrays.
std::pair<std::string, std::string> Columns(const StoragePairs& storages) {
  std::vector<std::string> virtual_storages, names;
  for (const auto& [vs, storage] : storages) {
    virtual_storages.push_back(vs);
    names.push_back(storage);
  }
  return {TextArray(virtual_storages), TextArray(names)};
}

}  // namespace

Status PostgresDatastore::PopulateStorageCleanups(const StoragePairs& storages) {
  auto [virtual_storages, names] = Columns(storages);
  return pool_
      ->Exec(R"(
INSERT INTO storage_cleanups (virtual_storage, storage)
SELECT * FROM unnest($1::text[], $2::text[])
ON CONFLICT (virtual_storage, storage) DO NOTHING)",
             {virtual_storages, names}, Deadline())
      .status();
}

StatusOr<std::optional<CleanupClaim>> PostgresDatastore::ClaimStorageCleanup(const StoragePairs& storages,
                                                                             std::chrono::milliseconds run_interval,
                                                                             std::chrono::milliseconds liveness) {
  auto [virtual_storages, names] = Columns(storages);
  auto rows = pool_->Exec(R"(
UPDATE storage_cleanups SET triggered_at = now()
WHERE (virtual_storage, storage) = (
  SELECT c.virtual_storage, c.storage
  FROM storage_cleanups c JOIN unnest($1::text[], $2::text[]) AS p(vs, st)
    ON c.virtual_storage = p.vs AND c.storage = p.st
  WHERE (c.last_run IS NULL OR c.last_run < now() - )" + sql::WindowParam(3) + R"()
    AND (c.triggered_at IS NULL OR c.triggered_at < now() - )" + sql::WindowParam(4) + R"()
  ORDER BY c.last_run NULLS FIRST, c.virtual_storage, c.storage
  LIMIT 1
  FOR UPDATE OF c SKIP LOCKED)
RETURNING virtual_storage, storage)",
                          {virtual_storages, names, Millis(run_interval), Millis(liveness)}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<CleanupClaim>();
  return std::optional<CleanupClaim>(CleanupClaim{rows->Text(0, 0), rows->Text(0, 1)});
}

Status PostgresDatastore::RefreshStorageCleanup(const CleanupClaim& claim) {
  return pool_
      ->Exec("UPDATE storage_cleanups SET triggered_at = now() WHERE virtual_storage = $1 AND storage = $2",
             {P(claim.virtual_storage), P(claim.storage)}, Deadline())
      .status();
}

Status PostgresDatastore::FinishStorageCleanup(const CleanupClaim& claim) {
  return pool_
      ->Exec("UPDATE storage_cleanups SET last_run = now(), triggered_at = NULL "
             "WHERE virtual_storage = $1 AND storage = $2",
             {P(claim.virtual_storage), P(claim.storage)}, Deadline())
      .status();
}

}  // namespace praefect::datastore
