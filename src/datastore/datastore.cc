#include "datastore/datastore.h"

#include <algorithm>

#include "auth/token.h"

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

std::string DeriveReplicaPath(int64_t repository_id) {
  std::string id = std::to_string(repository_id);
  auto digest = auth::Sha256(id);
  static const char* kHex = "0123456789abcdef";
  std::string aa = {kHex[digest[0] >> 4], kHex[digest[0] & 15]};
  std::string bb = {kHex[digest[1] >> 4], kHex[digest[1] & 15]};
  return "@cluster/repositories/" + aa + "/" + bb + "/" + id;
}

}  // namespace praefect::datastore
