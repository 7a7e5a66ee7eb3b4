#pragma once

#include <functional>
#include <map>
#include <optional>
#include <tuple>
#include <mutex>

#include "datastore/datastore.h"

namespace praefect::datastore {

// The Datastore in memory: for unit tests and for memory_queue_enabled.
// Nothing survives a restart. Thread-safe (one mutex).
class MemoryDatastore final : public Datastore {
 public:
  bool MayBlock() const override { return false; }
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
  // One process: a dead worker is a dead process, and its memory is gone.
  Status Heartbeat(const std::vector<int64_t>&) override { return Status::Ok(); }
  StatusOr<int64_t> ReleaseStale(std::chrono::seconds) override { return int64_t{0}; }
  void SetEnqueueListener(EnqueueListener listener) override;
  Status RecordHealth(std::string_view praefect_name, const std::vector<NodeHealth>& checks) override;
  StatusOr<HealthyStorages> GetHealthyStorages(std::chrono::milliseconds window) override;
  StatusOr<PrimaryElection> GetPrimary(int64_t repository_id, std::chrono::milliseconds window) override;
  StatusOr<std::vector<std::string>> SetReplicationFactor(std::string_view virtual_storage,
                                                          std::string_view relative_path, int factor,
                                                          const std::vector<std::string>& configured) override;

  // The clock of node_status (tests move it); default steady_clock.
  void SetClock(std::function<std::chrono::steady_clock::time_point()> now) { now_ = std::move(now); }

  // Every job still held (tests).
  std::vector<ReplicationEvent> Jobs();

 private:
  // REQUIRES: mu_ held. Adds the job unless an equal ready one exists
  // (duplicates collapse); returns whether it was added.
  bool EnqueueLocked(ReplicationJob job, const std::string& correlation_id);
  RepositoryMetadata* FindLocked(std::string_view virtual_storage, std::string_view relative_path);
  void Notify(const std::vector<std::pair<std::string, std::string>>& targets);

  std::mutex mu_;
  int64_t next_repository_id_ = 1;
  int64_t next_job_id_ = 1;
  std::map<int64_t, RepositoryMetadata> repositories_;  // by id
  std::map<int64_t, ReplicationEvent> jobs_;            // by id, in order
  EnqueueListener listener_;
  struct HealthRow {
    std::chrono::steady_clock::time_point last_contact_attempt;
    std::optional<std::chrono::steady_clock::time_point> last_seen_active;
  };
  // node_status: (praefect, virtual storage, storage) → row.
  std::map<std::tuple<std::string, std::string, std::string>, HealthRow> node_status_;
  std::function<std::chrono::steady_clock::time_point()> now_;
  HealthyStorages HealthyLocked(std::chrono::milliseconds window);
};

}  // namespace praefect::datastore
