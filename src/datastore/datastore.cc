#include "datastore/datastore.h"

#include <algorithm>
#include <random>

#include "auth/token.h"
#include "datastore/operator_store.h"

namespace praefect::datastore {

std::string_view ChangeTypeName(ChangeType type) {
  switch (type) {
    case ChangeType::kUpdate: return "update";
    case ChangeType::kDeleteReplica: return "delete_replica";
  }
  return "unknown";
}

std::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kReady: return "ready";
    case JobState::kInProgress: return "in_progress";
    case JobState::kCompleted: return "completed";
    case JobState::kFailed: return "failed";
    case JobState::kDead: return "dead";
  }
  return "unknown";
}

std::vector<std::string> RepositoryMetadata::UpToDate() const {
  std::vector<std::string> out;
  for (const auto& r : replicas) {
    if (r.generation == generation) out.push_back(r.storage);
  }
  return out;
}

bool RepositoryStatus::Unavailable() const {
  return std::none_of(replicas.begin(), replicas.end(), [](const ReplicaStatus& r) { return r.valid_primary; });
}

bool RepositoryMetadata::IsAssigned(std::string_view storage) const {
  return assigned.empty() || std::find(assigned.begin(), assigned.end(), storage) != assigned.end();
}

std::string ElectionFailureReason(const RepositoryMetadata& repo, const std::vector<std::string>& healthy) {
  std::vector<std::string> up_to_date = repo.UpToDate();
  std::string list;
  for (const auto& s : up_to_date) list += (list.empty() ? "" : ", ") + s;
  if (up_to_date.empty()) return "no replica is recorded";
  for (const auto& s : up_to_date) {
    if (std::find(healthy.begin(), healthy.end(), s) != healthy.end())
      return "the up-to-date replicas (" + list + ") are healthy but being deleted or unassigned";
  }
  return "every up-to-date replica (" + list + ", generation " + std::to_string(repo.generation) +
         ") is on a node the praefects do not see healthy";
}

Status CheckReplicationFactor(int factor, size_t configured) {
  if (factor < 1)
    return InvalidArgument("replication factor " + std::to_string(factor) +
                           " is too low: expected at least 1 (the primary)");
  if (static_cast<size_t>(factor) > configured)
    return InvalidArgument("replication factor " + std::to_string(factor) + " is higher than the " +
                           std::to_string(configured) + " storages configured for the virtual storage");
  return Status::Ok();
}

std::vector<std::string> PickAssignments(const std::vector<std::string>& current,
                                         const std::vector<std::string>& configured, const std::string& primary,
                                         int factor) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  // Only configured storages count; the primary is always kept.
  std::vector<std::string> keep;
  for (const auto& s : current) {
    if (std::find(configured.begin(), configured.end(), s) != configured.end()) keep.push_back(s);
  }
  if (!primary.empty() && std::find(keep.begin(), keep.end(), primary) == keep.end() &&
      std::find(configured.begin(), configured.end(), primary) != configured.end())
    keep.push_back(primary);
  while (keep.size() > static_cast<size_t>(factor)) {
    std::vector<size_t> removable;
    for (size_t i = 0; i < keep.size(); ++i) {
      if (keep[i] != primary) removable.push_back(i);
    }
    if (removable.empty()) break;
    keep.erase(keep.begin() + static_cast<long>(removable[std::uniform_int_distribution<size_t>(0, removable.size() - 1)(rng)]));
  }
  std::vector<std::string> spare;
  for (const auto& s : configured) {
    if (std::find(keep.begin(), keep.end(), s) == keep.end()) spare.push_back(s);
  }
  std::shuffle(spare.begin(), spare.end(), rng);
  for (size_t i = 0; keep.size() < static_cast<size_t>(factor) && i < spare.size(); ++i) keep.push_back(spare[i]);
  std::sort(keep.begin(), keep.end());
  return keep;
}

std::string DeriveReplicaPath(int64_t repository_id) {
  std::string id = std::to_string(repository_id);
  auto digest = auth::Sha256(id);
  static const char* kHex = "0123456789abcdef";
  std::string aa = {kHex[digest[0] >> 4], kHex[digest[0] & 15]};
  std::string bb = {kHex[digest[1] >> 4], kHex[digest[1] & 15]};
  return "@cluster/repositories/" + aa + "/" + bb + "/" + id;
}

}  // namespace praefect::datastore
