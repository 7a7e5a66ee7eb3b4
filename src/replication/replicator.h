#pragma once

#include <chrono>
#include <functional>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "datastore/datastore.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"

// The replication workers: for every node of every virtual storage, a
// worker takes that node's ready jobs from the datastore (only while the
// node passes its health checks: jobs for a node that is down wait for it
// instead of burning their attempts) and carries them
// out on the node: `update` with ReplicateRepository (the node pulls from
// the source node, whose address and token travel in the gitaly-servers
// metadata), `delete_replica` with RemoveRepository. A completed update
// records the target's new generation (the source's at the start of the
// job, so a write during the job leaves the target outdated and queued);
// an update whose target is already at the source's generation or above
// is skipped as done. An update that fails on its last attempt dies (its
// job is deleted, logged as "replication job died"); delete_replica jobs
// are retried for ever.
namespace praefect::replication {

struct Options {
  int batch_size = 10;  // [replication] batch_size
  // Workers per node ([replication] parallel_storage_processing_workers);
  // the per-replica job locks keep them off each other's replicas.
  int workers_per_storage = 1;
  // Longest sleep of an idle worker between polls; an enqueue notification
  // wakes it at once.
  std::chrono::milliseconds max_idle_wait{5000};
  std::chrono::milliseconds job_timeout{std::chrono::minutes(10)};
  // In-progress jobs are heartbeated this often; jobs of any praefect whose
  // heartbeat is older than stale_after (a worker that died) are retried.
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::seconds stale_after{10};
  // Called (from a worker) when a job dies, its attempts spent: its replica
  // stays outdated until a reconciliation round schedules it again. May be
  // empty.
  std::function<void(const datastore::ReplicationJob& job)> on_dead;
};

// Thread-safe. The pointees must outlive the Replicator; `metrics` may be
// null.
class Replicator {
 public:
  Replicator(datastore::Datastore* store, const nodes::NodeSet* nodes, metrics::Metrics* metrics, Options options);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Starts workers_per_storage worker threads per node and subscribes to enqueue
  // notifications.
  void Start();
  // Stops and joins the workers; a job in flight is finished first.
  void Stop();

  // Carries out `job` now, on the calling thread, outside the queue (no
  // job row, no lock, no acknowledgement): track-repository
  // -replicate-immediately. Needs no Start().
  [[nodiscard]] Status RunJob(const datastore::ReplicationJob& job);

 private:
  struct Worker;
  void Run(Worker* worker);
  // Carries out one job; the state to acknowledge it with.
  datastore::JobState Process(const datastore::ReplicationEvent& event);
  // Records the outcomes of a batch, retrying while the database cannot be
  // reached.
  void Acknowledge(Worker* worker, const std::map<datastore::JobState, std::vector<int64_t>>& outcome);
  Status Update(const datastore::ReplicationJob& job);
  Status DeleteReplica(const datastore::ReplicationJob& job);
  void Wake(const std::string& virtual_storage, const std::string& target);
  void Janitor();

  datastore::Datastore* store_;
  const nodes::NodeSet* nodes_;
  metrics::Metrics* metrics_;
  const Options options_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> stopping_{false};
  std::mutex in_flight_mu_;
  std::set<int64_t> in_flight_;  // GUARDED_BY(in_flight_mu_)
  std::mutex janitor_mu_;
  std::condition_variable janitor_cv_;
  std::thread janitor_;
};

// The gitaly-servers metadata value: base64 (standard, padded) of
// {"<storage>":{"address":"...","token":"..."}}.
std::string EncodeGitalyServers(const std::string& storage, const std::string& address, const std::string& token);

}  // namespace praefect::replication
