#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "datastore/cleanup_store.h"
#include "datastore/tracking_store.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"

// Repository cleanup (Praefect's repocleaner, reference background-work.md
// §6): finds repositories on the nodes' disks that the database does not
// know and reports each one (log warning `repository is not managed by
// praefect`, and a counter). Nothing is deleted: what to do with such a
// repository (track-repository it, or remove it from the disk) is the
// operator's decision.
//
// The praefects sharing a database take turns through storage_cleanups:
// each tick (at start, then every `check_interval` after the previous one
// ended) claims the storage looked through longest ago, if its last pass is
// older than `run_interval` and no live praefect is on it, and walks it.
namespace praefect::reconcile {

struct CleanerOptions {
  std::chrono::milliseconds run_interval{std::chrono::hours(24)};     // [repositories_cleanup] run_interval
  std::chrono::milliseconds check_interval{std::chrono::minutes(30)};  // [repositories_cleanup] check_interval
  size_t repositories_in_batch = 16;                                   // [repositories_cleanup] repositories_in_batch
  // Repositories modified more recently are left out (fixed in Praefect:
  // one being created or moved is on disk before its record).
  std::chrono::milliseconds min_age{std::chrono::hours(24)};
  // A claim not refreshed for this long is dead (Praefect's 30 s).
  std::chrono::milliseconds liveness{std::chrono::seconds(30)};
};

// What one tick did.
struct CleanupPass {
  bool ran = false;  // false: no storage was due
  std::string virtual_storage;
  std::string storage;
  int64_t untracked = 0;  // repositories reported
};

// Thread-safe. The stores and `nodes` must outlive it; `metrics` may be null.
class RepositoryCleaner {
 public:
  RepositoryCleaner(datastore::StorageCleanupStore* turns, datastore::TrackingStore* records,
                    const nodes::NodeSet* nodes, metrics::Metrics* metrics, CleanerOptions options);
  ~RepositoryCleaner();
  RepositoryCleaner(const RepositoryCleaner&) = delete;
  RepositoryCleaner& operator=(const RepositoryCleaner&) = delete;

  void Start();
  void Stop();

  // One tick on the calling thread: claims the storage due next, if any,
  // and walks it.
  StatusOr<CleanupPass> RunOnce();

 private:
  void Loop();
  Status Walk(const datastore::CleanupClaim& claim, CleanupPass* pass);
  bool Stopping();

  datastore::StorageCleanupStore* turns_;
  datastore::TrackingStore* records_;
  const nodes::NodeSet* nodes_;
  metrics::Metrics* metrics_;
  const CleanerOptions options_;
  datastore::StoragePairs storages_;  // every configured (virtual storage, storage)
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool populated_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace praefect::reconcile
