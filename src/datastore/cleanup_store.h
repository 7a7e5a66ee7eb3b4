#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status_or.h"
#include "datastore/reconciliation_store.h"

// What repository cleanup (src/reconcile/repository_cleaner.h) keeps in the
// database: the storages' turns (storage_cleanups, migration 0010), shared
// by every praefect on the database as Praefect's table is. Which paths on
// a storage the database does not know is TrackingStore's
// UntrackedReplicaPaths. PostgreSQL only, as in Praefect.
namespace praefect::datastore {

// A storage claimed for a cleanup pass.
struct CleanupClaim {
  std::string virtual_storage;
  std::string storage;
};

class StorageCleanupStore {
 public:
  virtual ~StorageCleanupStore() = default;

  // Makes sure every configured (virtual storage, storage) has its row.
  [[nodiscard]] virtual Status PopulateStorageCleanups(const StoragePairs& storages) = 0;
  // Claims, among `storages`, the one looked through longest ago (never
  // first) whose last pass is older than `run_interval` and whose previous
  // claim was not refreshed within `liveness` (its praefect is gone);
  // nullopt when none is due.
  [[nodiscard]] virtual StatusOr<std::optional<CleanupClaim>> ClaimStorageCleanup(
      const StoragePairs& storages, std::chrono::milliseconds run_interval, std::chrono::milliseconds liveness) = 0;
  // Keeps a claim live while its storage is walked.
  [[nodiscard]] virtual Status RefreshStorageCleanup(const CleanupClaim& claim) = 0;
  // Ends a pass: its time recorded, the claim released.
  [[nodiscard]] virtual Status FinishStorageCleanup(const CleanupClaim& claim) = 0;
};

}  // namespace praefect::datastore
