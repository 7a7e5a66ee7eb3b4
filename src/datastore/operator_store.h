#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status_or.h"

// What the operators' calls (gitaly.PraefectInfoService: dataloss,
// accept-dataloss, metadata, verify) read and change in the metadata, beyond
// what routing needs (datastore.h). PostgreSQL only, as in Praefect: in the
// no-database mode there is no OperatorStore and those calls say so.
namespace praefect::datastore {

// The storages of the configuration, (virtual storage, storage) pairs:
// what "assigned" falls back to when a repository has no assignments.
using ConfiguredStorages = std::vector<std::pair<std::string, std::string>>;

// One replica as an operator sees it.
struct ReplicaStatus {
  std::string storage;
  int64_t generation = -1;  // -1: assigned, but no replica was recorded yet
  // Explicitly assigned, or (no assignment to a configured storage) a
  // configured storage of the repository's virtual storage.
  bool assigned = false;
  bool healthy = false;  // by the praefects' quorum view
  // healthy, at the latest generation, not being deleted, and assigned when
  // any such replica is explicitly assigned (as Datastore::GetPrimary).
  bool valid_primary = false;
  std::optional<int64_t> verified_at_us;  // Unix microseconds; nullopt: unverified
};

struct RepositoryStatus {
  int64_t repository_id = 0;
  std::string virtual_storage;
  std::string relative_path;
  std::string replica_path;
  std::string primary;      // empty: none recorded
  int64_t generation = -1;  // the latest generation of any replica
  std::vector<ReplicaStatus> replicas;  // every recorded replica and every assigned storage, by storage

  // No replica is a valid primary: the repository cannot be served.
  bool Unavailable() const;
};

// A repository by id, or by virtual storage and relative path.
struct RepositoryKey {
  std::optional<int64_t> repository_id;
  std::string virtual_storage;
  std::string relative_path;
};

// The replicas MarkUnverified clears: of one repository, of one virtual
// storage, or of one storage of a virtual storage (storage non-empty).
struct UnverifiedSelector {
  std::optional<int64_t> repository_id;
  std::string virtual_storage;
  std::string storage;
};

// Thread-safe. Errors: UNAVAILABLE when the database cannot be reached.
class OperatorStore {
 public:
  virtual ~OperatorStore() = default;

  // The repositories of `virtual_storage` with an assigned replica that is
  // not a valid primary, by repository id; without
  // `include_partially_unavailable` only those that are Unavailable().
  // `window`: the health quorum window. Passed to `page` a part at a time,
  // in repository id order, so that neither the database nor the caller
  // holds them all at once; stops at the first error, `page`'s included.
  using DatalossPage = std::function<Status(std::vector<RepositoryStatus>)>;
  [[nodiscard]] virtual Status ForEachDataloss(std::string_view virtual_storage, bool include_partially_unavailable,
                                               const ConfiguredStorages& configured,
                                               std::chrono::milliseconds window, const DatalossPage& page) = 0;
  // The same, all at once.
  [[nodiscard]] StatusOr<std::vector<RepositoryStatus>> ListDataloss(std::string_view virtual_storage,
                                                                     bool include_partially_unavailable,
                                                                     const ConfiguredStorages& configured,
                                                                     std::chrono::milliseconds window) {
    std::vector<RepositoryStatus> all;
    Status st = ForEachDataloss(virtual_storage, include_partially_unavailable, configured, window,
                                [&](std::vector<RepositoryStatus> part) {
                                  for (auto& r : part) all.push_back(std::move(r));
                                  return Status::Ok();
                                });
    if (!st.ok()) return st;
    return all;
  }

  // The repository, or nullopt when it is not registered.
  [[nodiscard]] virtual StatusOr<std::optional<RepositoryStatus>> GetRepositoryStatus(
      const RepositoryKey& key, const ConfiguredStorages& configured, std::chrono::milliseconds window) = 0;

  // accept-dataloss: in one statement the repository's generation goes up
  // by one and `storage`'s replica is recorded at it (created when it had no
  // record); every other replica is then outdated. No job is queued.
  // NOT_FOUND when the repository is not registered.
  [[nodiscard]] virtual Status SetAuthoritativeStorage(std::string_view virtual_storage,
                                                       std::string_view relative_path,
                                                       std::string_view storage) = 0;

  // Clears verified_at of the selected replicas that had it set; returns
  // how many.
  [[nodiscard]] virtual StatusOr<int64_t> MarkUnverified(const UnverifiedSelector& selector) = 0;
};

}  // namespace praefect::datastore
