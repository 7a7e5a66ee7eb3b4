#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

// praefect's memory: which repositories exist, where their replicas live and
// how up to date each is (generations), and the replication jobs that bring
// outdated replicas up to date. One interface, two implementations:
// memory_datastore.h (unit tests, memory_queue_enabled) and postgres/.
//
// Generations: a repository's replicas each carry a generation; the primary
// gets 0 at creation and every acknowledged write bumps the replicas that
// took it to (latest + 1). A replica below the latest generation is outdated
// and has (or will get) an update job. A replica without a record does not
// hold the repository yet.
namespace praefect::datastore {

enum class ChangeType { kUpdate, kDeleteReplica };
// "update", "delete_replica": Praefect's names (job JSON, metrics labels).
std::string_view ChangeTypeName(ChangeType type);

// ready → in_progress → completed | failed (back to ready while attempts
// remain, else dead) | dead. Completed and dead are outcomes a worker
// acknowledges, not states a job stays in: the job is deleted at once (a
// dead job's replica stays outdated until the reconciler schedules a new
// job). Rows in those states are leftovers of an earlier version (Praefect
// kept some); the PostgreSQL store's stale sweep deletes them.
enum class JobState { kReady, kInProgress, kCompleted, kFailed, kDead };
std::string_view JobStateName(JobState state);

struct ReplicationJob {
  ChangeType change = ChangeType::kUpdate;
  int64_t repository_id = 0;
  std::string virtual_storage;
  std::string relative_path;  // as clients name it
  std::string replica_path;   // as the nodes store it
  std::string source_node_storage;  // update: pull from here (empty: any up-to-date replica)
  std::string target_node_storage;
};

struct ReplicationEvent {
  int64_t id = 0;
  JobState state = JobState::kReady;
  int attempts_left = 3;
  std::chrono::system_clock::time_point created_at;
  ReplicationJob job;
  std::string correlation_id;
};

struct Replica {
  std::string storage;
  int64_t generation = 0;
};

struct RepositoryMetadata {
  int64_t repository_id = 0;
  std::string virtual_storage;
  std::string relative_path;
  std::string replica_path;
  std::string primary;     // empty: none recorded
  int64_t generation = 0;  // the latest generation of any replica
  std::vector<Replica> replicas;  // storages holding it, any generation
  // The storages assigned to hold it (repository_assignments), sorted;
  // empty: no assignments recorded, every configured storage is assigned.
  std::vector<std::string> assigned;

  // Storages at the latest generation.
  std::vector<std::string> UpToDate() const;
  // Whether `storage` is assigned (always true without assignments).
  bool IsAssigned(std::string_view storage) const;
};

// A repository a creating call made on `primary`.
struct NewRepository {
  int64_t repository_id = 0;
  std::string virtual_storage;
  std::string relative_path;
  std::string replica_path;
  std::string primary;
  std::vector<std::string> outdated;  // each gets an update job from the primary
  std::string correlation_id;
  // The replication factor's assignments (the primary among them); empty:
  // none recorded, every configured storage holds the repository.
  std::vector<std::string> assigned;
  // Other storages that created it with the primary (a transaction's
  // voters): recorded at generation 0 too.
  std::vector<std::string> updated = {};
};

// A write acknowledged by `primary` (and by `updated`, when several replicas
// took it).
struct Write {
  int64_t repository_id = 0;
  std::string primary;
  std::vector<std::string> updated;
  std::vector<std::string> outdated;  // each gets an update job from the primary
  std::string correlation_id;
};

// One praefect's health check of one node (a row of node_status).
struct NodeHealth {
  std::string virtual_storage;
  std::string storage;
  bool healthy = false;
};

// Storages healthy by quorum, per virtual storage (each list sorted).
using HealthyStorages = std::map<std::string, std::vector<std::string>, std::less<>>;

// The outcome of GetPrimary: the repository's primary after the election
// (empty when no storage is a valid candidate) and why not, for messages.
struct PrimaryElection {
  std::string primary;    // empty: none
  std::string previous;   // the primary recorded before the call (may equal primary)
  bool changed = false;   // this call elected a new primary (or demoted it to none)
  std::string reason;     // when primary is empty: what made every candidate invalid
};

// "@cluster/repositories/<aa>/<bb>/<id>", <aa><bb> the first hex digits of
// SHA-256 of the decimal id, as Praefect derives replica paths: unique per
// id, so a create/delete/create race never hands one replica to two
// repositories.
std::string DeriveReplicaPath(int64_t repository_id);

// Helpers both stores share.
// Why GetPrimary found no candidate, in the operator's terms.
std::string ElectionFailureReason(const RepositoryMetadata& repo, const std::vector<std::string>& healthy);
// INVALID_ARGUMENT unless 1 <= factor <= configured.
[[nodiscard]] Status CheckReplicationFactor(int factor, size_t configured);
// `factor` storages of `configured`: `current` (restricted to configured)
// plus `primary`, trimmed or grown at random, never dropping `primary`.
// Sorted.
std::vector<std::string> PickAssignments(const std::vector<std::string>& current,
                                         const std::vector<std::string>& configured, const std::string& primary,
                                         int factor);

// Thread-safe. Errors: UNAVAILABLE when the store cannot be reached (the
// caller fails the call, it never hangs), NOT_FOUND / ALREADY_EXISTS as
// documented per method.
class Datastore {
 public:
  virtual ~Datastore() = default;

  // Whether a call may wait on something outside the process (a database):
  // false lets the data plane route on its own loop.
  virtual bool MayBlock() const { return true; }

  // A fresh repository id, never handed out before.
  [[nodiscard]] virtual StatusOr<int64_t> ReserveRepositoryId() = 0;

  // Records a created repository (primary at generation 0) and the update
  // jobs of the other replicas, atomically. ALREADY_EXISTS when
  // (virtual_storage, relative_path) is registered.
  [[nodiscard]] virtual Status CreateRepository(const NewRepository& repo) = 0;

  // The repository, or nullopt when it is not registered.
  [[nodiscard]] virtual StatusOr<std::optional<RepositoryMetadata>> GetRepository(std::string_view virtual_storage,
                                                                                  std::string_view relative_path) = 0;

  // In one statement: the primary and `updated` go to latest + 1, and each
  // of `outdated` gets an update job (unless a ready one from the same
  // source is pending: it reads the generations when it runs). Only
  // replicas that were at the latest generation move up: a write applied on
  // an outdated replica is not recorded, and that replica gets an update
  // job as if it were in `outdated`. FAILED_PRECONDITION when the primary was not at the latest
  // generation (nothing is changed: the write reached a replica that missed
  // an earlier one, and must not be acknowledged); NOT_FOUND when the
  // repository is gone.
  [[nodiscard]] virtual Status RecordWrite(const Write& write) = 0;

  // After a replication: `storage` holds the repository at `generation`
  // (never lowered). A worker records the source's generation as it read it
  // before replicating, after the replication and before acknowledging the
  // job: a write meanwhile leaves the replica outdated, with its own job.
  [[nodiscard]] virtual Status SetGeneration(int64_t repository_id, std::string_view storage, int64_t generation) = 0;

  // Removes the repository's metadata and enqueues a delete_replica job for
  // every replica except `except_storage` (the one the caller deleted
  // itself). Returns what was removed; nullopt when it was not registered.
  [[nodiscard]] virtual StatusOr<std::optional<RepositoryMetadata>> DeleteRepository(
      std::string_view virtual_storage, std::string_view relative_path, std::string_view except_storage,
      std::string_view correlation_id) = 0;

  // Up to `count` ready jobs for `target_node_storage`, marked in_progress,
  // never two for one replica at once. Each update job spends one attempt
  // (attempts_left is what remains after this one); delete_replica jobs
  // spend none: they are retried until the replica is gone.
  [[nodiscard]] virtual StatusOr<std::vector<ReplicationEvent>> Dequeue(std::string_view virtual_storage,
                                                                        std::string_view target_node_storage,
                                                                        int count) = 0;

  // Ends in_progress jobs the caller still holds: completed and dead ones
  // are deleted, failed ones go back to ready while attempts remain (always
  // for delete_replica), else they are deleted as dead ones. A job the stale
  // sweep released meanwhile is no longer the caller's and is left alone
  // (its retry has a new id). Returns the ids acted on.
  [[nodiscard]] virtual StatusOr<std::vector<int64_t>> Acknowledge(JobState state,
                                                                   const std::vector<int64_t>& ids) = 0;

  // Keeps in_progress jobs fresh: a worker calls it while it runs them.
  [[nodiscard]] virtual Status Heartbeat(const std::vector<int64_t>& ids) = 0;

  // Jobs left in_progress by a worker that died (no heartbeat for
  // `older_than`) are released: their replica locks freed, the job queued
  // again as ready under a new id while attempts remain (always for
  // delete_replica; the new id keeps a late acknowledgement by the worker,
  // if it was alive after all, off the retry), else deleted as dead (and
  // logged). Returns how many were released. Also clears, now and then,
  // rows an earlier version left (see JobState).
  [[nodiscard]] virtual StatusOr<int64_t> ReleaseStale(std::chrono::seconds older_than) = 0;

  // --- Health and elections (several praefects share these) ---

  // Records this praefect's latest check of each node: last contact attempt
  // now, last seen healthy now when `healthy` (node_status upsert).
  [[nodiscard]] virtual Status RecordHealth(std::string_view praefect_name, const std::vector<NodeHealth>& checks) = 0;

  // The quorum view: a storage is healthy when at least half (rounded up) of
  // the praefects that made a contact attempt on its virtual storage within
  // `window` last saw it healthy, with that latest check itself within
  // `window`. A praefect's latest check is what counts: one that saw the
  // node fail since it last saw it healthy does not vote for it.
  [[nodiscard]] virtual StatusOr<HealthyStorages> GetHealthyStorages(std::chrono::milliseconds window) = 0;

  // The repository's primary for a write, electing one when the recorded
  // primary is not a valid candidate. Valid: healthy by quorum (`window`),
  // at the repository's latest generation, no pending delete_replica job,
  // and assigned when any valid candidate is assigned. The election picks
  // a random valid candidate, assigned ones first, under the repository's
  // row lock in one statement, so that praefects racing on it agree. With
  // no candidate the recorded primary is cleared (primary empty; reason
  // says why). NOT_FOUND when the repository is not registered.
  [[nodiscard]] virtual StatusOr<PrimaryElection> GetPrimary(int64_t repository_id,
                                                             std::chrono::milliseconds window) = 0;

  // --- Replication factor ---

  // Assigns `factor` storages out of `configured` (the virtual storage's
  // nodes) to the repository: keeps the current assignments (all of
  // `configured` when none are recorded) and adds random unassigned ones or
  // removes random assigned ones, never the primary. A newly assigned
  // storage gets an update job; an unassigned one loses its replica record
  // (reads stop at once) and gets a delete_replica job. Returns the
  // assignments, sorted. INVALID_ARGUMENT when factor < 1 or factor >
  // configured.size(); NOT_FOUND for an unknown repository.
  [[nodiscard]] virtual StatusOr<std::vector<std::string>> SetReplicationFactor(
      std::string_view virtual_storage, std::string_view relative_path, int factor,
      const std::vector<std::string>& configured) = 0;

  // Jobs in `state` (for metrics, tests and operators).
  [[nodiscard]] virtual StatusOr<int64_t> CountJobs(JobState state) = 0;

  // Called (on any thread, must not block) after jobs were enqueued for a
  // target, so that its worker starts at once instead of at its next poll.
  // Empty names mean "some target, unknown which": wake every worker.
  using EnqueueListener = std::function<void(const std::string& virtual_storage, const std::string& target)>;
  virtual void SetEnqueueListener(EnqueueListener listener) = 0;
};

}  // namespace praefect::datastore
