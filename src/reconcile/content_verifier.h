#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status_or.h"
#include "datastore/content_verification_store.h"
#include "datastore/reconciliation_store.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"

// Content verification, which Praefect does not have: replicas at the same
// generation must hold the same content. For each repository of the walk
// (content_verification_store.h), the CalculateChecksum of every healthy
// replica at the latest generation is compared with the primary's; a
// replica that differs is marked outdated and repaired from the primary by
// a replication job (never the other way round), and the finding is logged
// with both checksums and counted. A repository being written to is left
// alone: one with an active replication job is not claimed, the primary's
// checksum is taken again before anything is marked (a write in flight
// changes it), and the marking happens only if no write was recorded
// meanwhile.
//
// The daemon goes at `repositories_per_second` (per praefect; the praefects
// share the walk, so the cluster's rate is the sum); the maintenance
// command runs it for a time budget.
namespace praefect::reconcile {

struct ContentOptions {
  double repositories_per_second = 1;  // the daemon's pace; <= 0: no daemon
  int batch = 10;                      // repositories claimed at a time
  std::chrono::milliseconds call_timeout{std::chrono::seconds(30)};  // per CalculateChecksum
  // How long a difference must hold, with the primary unchanged, before
  // the replica is marked: a transactional write commits on a voting
  // secondary a moment before (or after) the primary, and is recorded only
  // when the call ends.
  std::chrono::milliseconds settle{std::chrono::seconds(2)};
};

// What a run found, per secondary replica compared (a repository counts
// once in `repositories`).
struct ContentResult {
  int64_t repositories = 0;  // repositories compared
  int64_t matched = 0;
  int64_t mismatched = 0;  // differed, marked outdated, update job from the primary queued
  int64_t skipped = 0;     // written to meanwhile, or the replica unhealthy
  int64_t errors = 0;      // a checksum could not be taken
  int64_t passes = 0;      // passes over every repository completed (cluster-wide)
  bool pass_completed = false;  // this run finished a pass
  // The repairs the run queued (one update job from the primary per
  // mismatching replica), for a caller that waits for them.
  std::vector<datastore::ScheduledJob> repairs;
};

// A replica's checksum (CalculateChecksum's answer); tests substitute one.
using ChecksumFn = std::function<StatusOr<std::string>(const nodes::Node& node, const std::string& replica_path)>;

// Thread-safe. `store` and `nodes` must outlive it; `metrics` may be null.
class ContentVerifier {
 public:
  ContentVerifier(datastore::ContentVerificationStore* store, const nodes::NodeSet* nodes, metrics::Metrics* metrics,
                  ContentOptions options, ChecksumFn checksum = nullptr);
  ~ContentVerifier();
  ContentVerifier(const ContentVerifier&) = delete;
  ContentVerifier& operator=(const ContentVerifier&) = delete;

  void Start();
  void Stop();

  // Verifies batch after batch, from wherever the cluster's walk stands,
  // until `budget` is spent, `max_repositories` were claimed (0: no limit)
  // or the run went once round every repository (past the end and back to
  // the first it checked). On the calling thread.
  StatusOr<ContentResult> Run(std::chrono::milliseconds budget, int64_t max_repositories);

 private:
  void Loop();
  // One batch; adds to `result`; how many repositories were claimed.
  StatusOr<int> Batch(ContentResult* result);
  void Verify(const datastore::ContentCandidate& repo, ContentResult* result);
  void Count(const std::string& virtual_storage, const std::string& storage, const char* outcome);

  datastore::ContentVerificationStore* store_;
  const nodes::NodeSet* nodes_;
  metrics::Metrics* metrics_;
  const ContentOptions options_;
  ChecksumFn checksum_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

// CalculateChecksum of `replica_path` on `node`.
StatusOr<std::string> NodeChecksum(const nodes::Node& node, const std::string& replica_path,
                                   std::chrono::milliseconds timeout);

}  // namespace praefect::reconcile
