#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "config/config.h"
#include "datastore/datastore.h"
#include "datastore/operator_store.h"
#include "datastore/postgres/listener.h"
#include "datastore/postgres/pool.h"
#include "datastore/cleanup_store.h"
#include "datastore/content_verification_store.h"
#include "datastore/gauges_store.h"
#include "datastore/reconciliation_store.h"
#include "datastore/tracking_store.h"
#include "datastore/verification_store.h"

namespace praefect::datastore {

// The Datastore in PostgreSQL (schema: sql/migrations), shared by every
// praefect of a cluster. Each method is one statement (one transaction);
// RecordWrite bumps generations and enqueues jobs in the same statement.
// Jobs are locked per replica (replication_queue_lock) so that two workers,
// of one praefect or of several, never run jobs on one replica at once;
// Dequeue skips rows other transactions hold (FOR UPDATE SKIP LOCKED).
// A background thread LISTENs on replication_queue_enqueued and calls the
// enqueue listener with empty names ("some target has work"), so workers
// start within milliseconds of a write anywhere in the cluster.
//
// Health, elections and assignments: postgres_election.cc,
// postgres_replication_factor.cc; the OperatorStore: postgres_operator.cc; the TrackingStore:
// postgres_tracking.cc; the ReconciliationStore: postgres_reconcile.cc; the
// ContentVerificationStore: postgres_content.cc; the VerificationStore:
// postgres_verification.cc. Every statement that changes a
// repository's generations, primary or assignments locks its repositories
// row first, so they serialize per repository.
//
// Every call is bounded by `call_timeout`; a database that cannot be reached
// is UNAVAILABLE at once (the pool's backoff), never a hang. Thread-safe.
class PostgresDatastore final : public Datastore,
                                public OperatorStore,
                                public TrackingStore,
                                public ReconciliationStore,
                                public ContentVerificationStore,
                                public VerificationStore,
                                public StorageCleanupStore,
                                public GaugesStore {
 public:
  PostgresDatastore(std::unique_ptr<postgres::Pool> pool, std::unique_ptr<postgres::Listener> listener,
                    std::chrono::milliseconds call_timeout = std::chrono::seconds(10));
  ~PostgresDatastore() override;

  StatusOr<int64_t> ReserveRepositoryId() override;
  Status CreateRepository(const NewRepository& repo) override;
  StatusOr<std::optional<RepositoryMetadata>> GetRepository(std::string_view virtual_storage,
                                                            std::string_view relative_path) override;
  Status RecordWrite(const Write& write) override;
  Status SetGeneration(int64_t repository_id, std::string_view storage, int64_t generation) override;
  StatusOr<std::optional<RepositoryMetadata>> DeleteRepository(std::string_view virtual_storage,
                                                               std::string_view relative_path,
                                                               std::string_view except_storage,
                                                               std::string_view correlation_id) override;
  StatusOr<std::vector<ReplicationEvent>> Dequeue(std::string_view virtual_storage,
                                                  std::string_view target_node_storage, int count) override;
  StatusOr<std::vector<int64_t>> Acknowledge(JobState state, const std::vector<int64_t>& ids) override;
  StatusOr<int64_t> CountJobs(JobState state) override;
  void SetEnqueueListener(EnqueueListener listener) override;
  Status Heartbeat(const std::vector<int64_t>& ids) override;
  StatusOr<int64_t> ReleaseStale(std::chrono::seconds older_than) override;
  Status RecordHealth(std::string_view praefect_name, const std::vector<NodeHealth>& checks) override;
  StatusOr<HealthyStorages> GetHealthyStorages(std::chrono::milliseconds window) override;
  StatusOr<PrimaryElection> GetPrimary(int64_t repository_id, std::chrono::milliseconds window) override;
  StatusOr<std::vector<std::string>> SetReplicationFactor(std::string_view virtual_storage,
                                                          std::string_view relative_path, int factor,
                                                          const std::vector<std::string>& configured) override;

  // OperatorStore
  Status ForEachDataloss(std::string_view virtual_storage, bool include_partially_unavailable,
                         const ConfiguredStorages& configured, std::chrono::milliseconds window,
                         const DatalossPage& page) override;
  StatusOr<std::optional<RepositoryStatus>> GetRepositoryStatus(const RepositoryKey& key,
                                                                const ConfiguredStorages& configured,
                                                                std::chrono::milliseconds window) override;
  Status SetAuthoritativeStorage(std::string_view virtual_storage, std::string_view relative_path,
                                 std::string_view storage) override;
  StatusOr<int64_t> MarkUnverified(const UnverifiedSelector& selector) override;

  // TrackingStore
  StatusOr<bool> DeleteRepositoryRecord(std::string_view virtual_storage, std::string_view relative_path) override;
  StatusOr<int64_t> RemoveReplicationJobs(std::string_view virtual_storage, std::string_view relative_path,
                                          bool keep_deletions) override;
  StatusOr<bool> EnqueueUpdate(int64_t repository_id, std::string_view source, std::string_view target,
                               std::string_view correlation_id) override;
  StatusOr<std::vector<std::string>> UntrackedReplicaPaths(std::string_view virtual_storage,
                                                           std::string_view storage,
                                                           const std::vector<std::string>& replica_paths) override;

  // ReconciliationStore (postgres_reconcile.cc)
  StatusOr<RoundLease> TryStartReconciliation(std::string_view holder, std::chrono::milliseconds interval,
                                              std::optional<std::chrono::milliseconds> returned_ago,
                                              std::chrono::milliseconds lease) override;
  Status RenewReconciliation(std::string_view holder, std::chrono::milliseconds lease) override;
  Status EndReconciliation(std::string_view holder) override;
  StatusOr<std::optional<std::pair<int64_t, int64_t>>> RepositoryIdRange() override;
  StatusOr<std::vector<ScheduledJob>> ScheduleReconciliation(const StoragePairs& healthy, int64_t first,
                                                             int64_t last) override;
  StatusOr<std::vector<PendingRepair>> PendingRepairs(const std::vector<ScheduledJob>& jobs) override;
  StatusOr<int64_t> ActiveReplicationJobs() override;
  // StorageCleanupStore (postgres_cleanup.cc)
  Status PopulateStorageCleanups(const StoragePairs& storages) override;
  StatusOr<std::optional<CleanupClaim>> ClaimStorageCleanup(const StoragePairs& storages,
                                                            std::chrono::milliseconds run_interval,
                                                            std::chrono::milliseconds liveness) override;
  Status RefreshStorageCleanup(const CleanupClaim& claim) override;
  Status FinishStorageCleanup(const CleanupClaim& claim) override;
  // ContentVerificationStore (postgres_content.cc)
  StatusOr<ContentBatch> ClaimContentBatch(int count) override;
  StatusOr<bool> MarkContentMismatch(int64_t repository_id, std::string_view storage, int64_t generation,
                                     std::string_view primary, std::string_view correlation_id) override;

  // VerificationStore (postgres_verification.cc)
  StatusOr<std::vector<VerificationJob>> LeaseVerificationJobs(const StoragePairs& healthy,
                                                               std::chrono::milliseconds interval, int limit,
                                                               std::chrono::milliseconds lease) override;
  StatusOr<VerificationRecorded> RecordVerification(const std::vector<VerificationResult>& results,
                                                    bool delete_invalid) override;
  StatusOr<std::vector<VerificationJob>> ReleaseStaleVerificationLeases(std::chrono::milliseconds expired_for,
                                                                        int limit) override;

  // GaugesStore (postgres_gauges.cc): what /db_metrics reports.
  StatusOr<DatabaseGauges> QueryGauges(const GaugesQuery& query) override;

  // How many repositories each of ForEachDataloss's statements reads
  // (50,000; tests make it small to cross pages).
  void SetDatalossPage(int64_t repositories) { dataloss_page_ = repositories; }

 private:
  postgres::Deadline Deadline() const { return postgres::Clock::now() + call_timeout_; }
  void ListenLoop();
  // Deletes finished rows an earlier version left in the queue and makes
  // its 'failed' ones ready; at most once a minute (ReleaseStale calls it).
  Status SweepLeftovers();

  std::unique_ptr<postgres::Pool> pool_;
  std::unique_ptr<postgres::Listener> listener_conn_;
  const std::chrono::milliseconds call_timeout_;
  int64_t dataloss_page_ = 50000;
  std::mutex mu_;
  EnqueueListener listener_;  // GUARDED_BY(mu_)
  std::optional<std::chrono::steady_clock::time_point> swept_at_;  // GUARDED_BY(mu_)
  std::atomic<bool> stopping_{false};
  std::thread listen_thread_;
};

// A text[] literal for a parameter: {"a","b"} with quotes and backslashes
// escaped.
std::string TextArray(const std::vector<std::string>& values);
// The elements of a text[] value as PostgreSQL prints it ({a,"b c"}); empty
// for NULL ("").
std::vector<std::string> ParseTextArray(std::string_view text);

}  // namespace praefect::datastore
