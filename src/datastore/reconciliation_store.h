#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status_or.h"
#include "datastore/datastore.h"

// What automatic reconciliation (src/reconcile/reconciler.h) reads and
// writes: the cluster-wide round lease and the scheduling of jobs for
// replicas that are outdated, missing or no longer assigned. PostgreSQL
// only, as in Praefect (with the memory queue there is no reconciliation).
namespace praefect::datastore {

// One job a reconciliation scheduled.
struct ScheduledJob {
  ChangeType change = ChangeType::kUpdate;
  int64_t repository_id = 0;
  std::string virtual_storage;
  std::string relative_path;
  std::string source_storage;  // update only
  std::string target_storage;
  std::string correlation_id;
};

// The locally healthy storages the reconciliation may use, as (virtual
// storage, storage) pairs.
using StoragePairs = std::vector<std::pair<std::string, std::string>>;

// What TryStartReconciliation found.
struct RoundLease {
  bool leader = false;          // this praefect holds the lease: run the round
  std::string holder;           // the praefect running a round now (when not us)
  // How long ago the latest round (of any praefect) started; nullopt: never.
  std::optional<std::chrono::milliseconds> last_started_ago;
};

// A scheduled repair that has not taken effect yet (PendingRepairs).
struct PendingRepair {
  ScheduledJob job;
  bool job_active = false;  // its job (or another for the replica) is still queued or running
};

class ReconciliationStore {
 public:
  virtual ~ReconciliationStore() = default;

  // Takes the round lease for `holder` for `lease` when it is free (or
  // expired, or already ours) and a round is due: none started within
  // `interval`, or, when `returned_ago` is set, none started since a node
  // returned that long ago (minus a grace for the other praefects' health
  // checks to see it too). Sets the round's start.
  [[nodiscard]] virtual StatusOr<RoundLease> TryStartReconciliation(std::string_view holder,
                                                                    std::chrono::milliseconds interval,
                                                                    std::optional<std::chrono::milliseconds> returned_ago,
                                                                    std::chrono::milliseconds lease) = 0;
  // Extends the lease; FAILED_PRECONDITION when `holder` no longer holds
  // it (it expired and another praefect took it: stop the round).
  [[nodiscard]] virtual Status RenewReconciliation(std::string_view holder, std::chrono::milliseconds lease) = 0;
  // Ends the round: the lease is free, the end recorded.
  [[nodiscard]] virtual Status EndReconciliation(std::string_view holder) = 0;

  // The smallest and largest repository id (nullopt: no repository).
  [[nodiscard]] virtual StatusOr<std::optional<std::pair<int64_t, int64_t>>> RepositoryIdRange() = 0;

  // Schedules, for the repositories with ids in [first, last], in one
  // transaction, Praefect's reconciliation jobs (reference
  // background-work.md §4): an `update` job for each healthy assigned
  // storage whose replica is missing or outdated and has no active update
  // job, from a random healthy up-to-date replica; a `delete_replica` job
  // for at most one healthy unassigned replica per repository that no
  // active job involves, once every assigned replica is at least as new.
  // ABORTED when another scheduler (a Praefect v16 on the same database)
  // holds the advisory lock: retry shortly.
  [[nodiscard]] virtual StatusOr<std::vector<ScheduledJob>> ScheduleReconciliation(const StoragePairs& healthy,
                                                                                   int64_t first, int64_t last) = 0;

  // Of `jobs` (scheduled repairs), those whose effect is not there yet: an
  // update's replica is missing or behind its repository's generation, a
  // delete_replica's replica is still recorded. A repository deleted
  // meanwhile needs nothing. In the order of `jobs`.
  [[nodiscard]] virtual StatusOr<std::vector<PendingRepair>> PendingRepairs(const std::vector<ScheduledJob>& jobs) = 0;
  // Replication jobs queued or running (ready, in_progress, failed), of
  // every virtual storage.
  [[nodiscard]] virtual StatusOr<int64_t> ActiveReplicationJobs() = 0;
};

}  // namespace praefect::datastore
