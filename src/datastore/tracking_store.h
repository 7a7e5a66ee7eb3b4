#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

// What the operators' repair commands change and read in the metadata
// beyond Datastore and OperatorStore: remove-repository (a record removed
// without touching the nodes, the removed repository's jobs dropped),
// track-repository(ies) (one update job, unless an equal one waits) and
// list-untracked-repositories (which replicas on disk the database knows).
// PostgreSQL only, as in Praefect.
namespace praefect::datastore {

// Thread-safe. Errors: UNAVAILABLE when the database cannot be reached.
class TrackingStore {
 public:
  virtual ~TrackingStore() = default;

  // Removes the repository's rows (replicas and assignments cascade) and
  // queues nothing: its replicas stay on the nodes (remove-repository
  // -db-only). Returns whether it was registered.
  [[nodiscard]] virtual StatusOr<bool> DeleteRepositoryRecord(std::string_view virtual_storage,
                                                              std::string_view relative_path) = 0;

  // Deletes the replication jobs of (virtual_storage, relative_path) that
  // are not in progress; with `keep_deletions` the delete_replica jobs stay
  // (the ones a removal just queued for nodes it could not reach). Returns
  // how many of the jobs it would delete are still in progress (a caller
  // repeats until none is).
  [[nodiscard]] virtual StatusOr<int64_t> RemoveReplicationJobs(std::string_view virtual_storage,
                                                                std::string_view relative_path,
                                                                bool keep_deletions) = 0;

  // Queues an update job of the repository from `source` to `target`.
  // Returns false, queueing nothing, when a ready update job for that
  // replica from `source` is already queued.
  [[nodiscard]] virtual StatusOr<bool> EnqueueUpdate(int64_t repository_id, std::string_view source,
                                                     std::string_view target, std::string_view correlation_id) = 0;

  // Of `replica_paths` (paths on `storage` of `virtual_storage`), those no
  // repository of the virtual storage records a replica of on that storage,
  // in the given order.
  [[nodiscard]] virtual StatusOr<std::vector<std::string>> UntrackedReplicaPaths(
      std::string_view virtual_storage, std::string_view storage, const std::vector<std::string>& replica_paths) = 0;
};

}  // namespace praefect::datastore
