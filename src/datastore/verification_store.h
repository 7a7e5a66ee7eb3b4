#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status_or.h"
#include "datastore/reconciliation_store.h"  // StoragePairs

// What background verification (src/reconcile/verifier.h) reads and writes:
// leases on replicas due for a check, the checks' results, and leases left
// behind by a praefect that died. PostgreSQL only (the columns verified_at
// and verification_leased_until of storage_repositories), as in Praefect.
namespace praefect::datastore {

// A replica leased for verification.
struct VerificationJob {
  int64_t repository_id = 0;
  std::string virtual_storage;
  std::string relative_path;
  std::string replica_path;  // the path on the node
  std::string storage;
  // The replica's generation when leased: a record written since (a
  // replication made the replica again) is not removed on the strength of
  // a check made before.
  int64_t generation = 0;
};

// What the check of one leased replica found.
struct VerificationResult {
  VerificationJob job;
  bool answered = false;  // the node answered; false: an error, nothing learnt
  bool exists = false;    // when answered
};

// What RecordVerification did.
struct VerificationRecorded {
  int64_t removed = 0;  // storage_repositories rows deleted
  // Invalid replicas whose record was kept because it changed after the
  // lease (a new generation): they are checked again.
  int64_t changed = 0;
};

class VerificationStore {
 public:
  virtual ~VerificationStore() = default;

  // Leases up to `limit` replicas on the `healthy` (virtual storage,
  // storage) pairs that no one holds a lease on and that were never
  // verified or not within `interval`: never-verified first, then the
  // longest ago. Rows other transactions hold are skipped (SKIP LOCKED), so
  // praefects verifying at once take different replicas. The lease ends
  // `lease` from now.
  [[nodiscard]] virtual StatusOr<std::vector<VerificationJob>> LeaseVerificationJobs(
      const StoragePairs& healthy, std::chrono::milliseconds interval, int limit, std::chrono::milliseconds lease) = 0;

  // Records the checks in one transaction, each repository's row locked
  // first (as every change of its replicas' records): the leases end;
  // verified_at is now for every answered check and unchanged for an error;
  // with `delete_invalid`, the record of a replica that does not exist is
  // removed (never the repository's record: a repository whose last replica
  // is gone stays visible to dataloss).
  [[nodiscard]] virtual StatusOr<VerificationRecorded> RecordVerification(
      const std::vector<VerificationResult>& results, bool delete_invalid) = 0;

  // Ends up to `limit` leases that ran out more than `expired_for` ago (a
  // praefect died while verifying), skipping rows other transactions hold;
  // returns the replicas released (storage and paths; generation 0).
  [[nodiscard]] virtual StatusOr<std::vector<VerificationJob>> ReleaseStaleVerificationLeases(
      std::chrono::milliseconds expired_for, int limit) = 0;
};

}  // namespace praefect::datastore
