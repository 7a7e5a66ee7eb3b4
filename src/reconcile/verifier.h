#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status_or.h"
#include "datastore/verification_store.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"

// Background verification of the repository metadata (Praefect's metadata
// verifier, reference background-work.md §5): the database says which
// replicas exist; a replica that vanished from its node behind praefect's
// back (a restored backup, an operator's rm, a lost disk) would otherwise
// stay "up to date" in the records, get reads routed to it and never be
// repaired. Every replica is checked on its node once per
// `verification_interval`. A missing replica's record is removed (with
// delete_invalid_records), which makes it a missing replica to the
// reconciler (reconciler.h): its next round schedules the replication that
// makes the replica again. Verification and reconciliation together are
// the repair.
//
// Batches of 25 replicas of the locally healthy storages are leased in the
// database (so the praefects verify different replicas), checked on their
// nodes in parallel (RepositoryExists), and recorded in one statement. A
// batch comes every 2 s, and at once again while batches come back full
// (after `praefect verify` marked a whole storage). Leases of a praefect
// that died while verifying are released every 10 s.
namespace praefect::reconcile {

struct VerifierOptions {
  // [background_verification] verification_interval: a replica is checked
  // again when its last check is older than this.
  std::chrono::milliseconds interval{std::chrono::hours(168)};
  // [background_verification] delete_invalid_records: false only logs and
  // counts the missing replicas (their records are kept, marked verified).
  bool delete_invalid_records = true;
  std::chrono::milliseconds poll{2000};           // between batches (from a batch's end)
  std::chrono::milliseconds release_poll{10000};  // between stale-lease releases
  // A batch's lease, and the time its checks may take: a check still
  // running then is an error, and the replica stays due.
  std::chrono::milliseconds lease{30000};
  int batch = 25;
  // Called (on the verifier's thread) after a batch removed records of
  // missing replicas: serve asks the reconciler for a round, so that they
  // are made again within seconds rather than at its next interval.
  std::function<void()> on_records_removed;
};

// Whether the replica `job` names exists on its node: true or false when
// the node answered, an error otherwise. Returns within `timeout`, and
// soon once `*abandon` is true (the verifier stopping). Called from several
// threads at once.
using ExistenceCheck = std::function<StatusOr<bool>(const datastore::VerificationJob& job,
                                                    std::chrono::milliseconds timeout,
                                                    const std::atomic<bool>* abandon)>;

// RepositoryExists{storage, replica_path} on the replica's node of `nodes`
// (signed with the node's token). `nodes` must outlive the check.
ExistenceCheck NodeExistenceCheck(const nodes::NodeSet* nodes);

// What one batch did.
struct BatchResult {
  size_t leased = 0;  // batch full when leased == VerifierOptions::batch
  int64_t valid = 0;
  int64_t invalid = 0;
  int64_t errors = 0;
  int64_t removed = 0;  // records deleted
};

// Thread-safe. `store` and `nodes` must outlive it; `metrics` may be null.
class Verifier {
 public:
  Verifier(datastore::VerificationStore* store, const nodes::NodeSet* nodes, ExistenceCheck check,
           metrics::Metrics* metrics, VerifierOptions options);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // Creates the metric series of every configured storage (0) and starts
  // the thread that runs batches and releases stale leases. Call at most
  // once.
  void Start();
  // Stops the thread; a batch in flight has its checks cancelled (errors:
  // the replicas stay due) and is recorded.
  void Stop();

  // One batch now on the calling thread (the storages are the nodes' local
  // health verdicts). Batches do not overlap.
  StatusOr<BatchResult> RunBatch();
  // Releases the stale leases now, 25 at a time while a full batch was
  // released; returns how many.
  StatusOr<int64_t> ReleaseStaleLeases();

 private:
  void Loop();
  datastore::StoragePairs HealthyStorages() const;
  std::vector<datastore::VerificationResult> Check(const std::vector<datastore::VerificationJob>& jobs,
                                                   std::chrono::milliseconds timeout);
  void Report(const std::vector<datastore::VerificationResult>& results, BatchResult* out);

  datastore::VerificationStore* store_;
  const nodes::NodeSet* nodes_;
  const ExistenceCheck check_;
  metrics::Metrics* metrics_;
  const VerifierOptions options_;
  std::atomic<bool> abandon_{false};  // Stop(): cancel the checks in flight
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::mutex batch_mu_;    // one batch at a time in this process
  std::thread thread_;
};

}  // namespace praefect::reconcile
