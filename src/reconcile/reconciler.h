#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "datastore/reconciliation_store.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"

// Automatic reconciliation: schedules replication jobs for every replica
// that is outdated or missing on a healthy assigned storage, and deletions
// of replicas on storages no longer assigned (Praefect's reconciler,
// reference background-work.md §4), so that no replica stays outdated
// because its job died or was never written.
//
// Rounds: when none started within `interval` anywhere in the cluster
// (the praefects share one schedule through the round lease in the
// database: several praefects reconcile once per interval between them, and
// one at a time), and at once, within about a second, when a node this
// praefect routes to becomes healthy again: its replicas fell behind while
// it was away and their jobs may have died. A round reads the repositories
// in ranges of `range` ids, each range one short transaction, so a round
// over millions of repositories never holds a long transaction and its jobs
// reach the workers range by range.
namespace praefect::reconcile {

struct Options {
  std::string praefect_name;  // the lease holder's name (node_status' praefect_name)
  std::chrono::milliseconds interval{std::chrono::minutes(5)};  // [reconciliation] scheduling_interval
  // How often this praefect asks whether a round is due: often enough that
  // the cluster's rounds come at most this late, cheap (one row).
  std::chrono::milliseconds poll{std::chrono::seconds(10)};
  // How often the local health of the nodes is looked at for returns.
  std::chrono::milliseconds health_poll{std::chrono::milliseconds(250)};
  std::chrono::milliseconds lease{std::chrono::seconds(60)};
  int64_t range = 10000;  // repository ids per scheduling statement
};

// What one round did.
struct RoundResult {
  bool ran = false;        // false: not due, or another praefect holds the lease
  std::string skipped;     // why not, when !ran
  int64_t ranges = 0;
  std::vector<datastore::ScheduledJob> jobs;
  std::chrono::milliseconds took{0};
};

// Thread-safe. `store` and `nodes` must outlive it; `metrics` may be null.
class Reconciler {
 public:
  Reconciler(datastore::ReconciliationStore* store, const nodes::NodeSet* nodes, metrics::Metrics* metrics,
             Options options);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Starts the thread that runs rounds. The first regular round comes one
  // interval after start (as Praefect), unless a node returns first.
  void Start();
  void Stop();

  // One round now on the calling thread, if this praefect gets the lease:
  // `force` runs it even when one ran within the interval (the maintenance
  // command; a node's return). The healthy storages are the nodes' local
  // verdicts.
  StatusOr<RoundResult> RunRound(bool force);

  // Asks the daemon for a round within about health_poll, whatever the
  // interval (the verifier removed records of missing replicas). Cheap;
  // from any thread.
  void RequestRound();

 private:
  void Loop();
  datastore::StoragePairs HealthyStorages(std::vector<std::string>* skipped_virtual_storages) const;
  StatusOr<RoundResult> Round(std::optional<std::chrono::milliseconds> returned_ago, bool force);
  void LogJobs(const std::vector<datastore::ScheduledJob>& jobs) const;

  datastore::ReconciliationStore* store_;
  const nodes::NodeSet* nodes_;
  metrics::Metrics* metrics_;
  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;   // GUARDED_BY(mu_)
  bool requested_ = false;  // GUARDED_BY(mu_)
  std::mutex round_mu_;    // one round at a time in this process
  std::thread thread_;
};

}  // namespace praefect::reconcile
