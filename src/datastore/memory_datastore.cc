#include "datastore/memory_datastore.h"

#include <algorithm>
#include <random>
#include <set>

namespace praefect::datastore {
namespace {

Replica* FindReplica(RepositoryMetadata& repo, std::string_view storage) {
  for (auto& r : repo.replicas) {
    if (r.storage == storage) return &r;
  }
  return nullptr;
}

std::string LockKey(const ReplicationJob& job) {
  return job.virtual_storage + "|" + job.target_node_storage + "|" + job.relative_path;
}

}  // namespace

StatusOr<int64_t> MemoryDatastore::ReserveRepositoryId() {
  std::lock_guard lock(mu_);
  return next_repository_id_++;
}

RepositoryMetadata* MemoryDatastore::FindLocked(std::string_view virtual_storage, std::string_view relative_path) {
  for (auto& [id, repo] : repositories_) {
    if (repo.virtual_storage == virtual_storage && repo.relative_path == relative_path) return &repo;
  }
  return nullptr;
}

bool MemoryDatastore::EnqueueLocked(ReplicationJob job, const std::string& correlation_id) {
  for (const auto& [id, event] : jobs_) {
    const ReplicationJob& j = event.job;
    if (event.state == JobState::kReady && j.change == job.change && j.repository_id == job.repository_id &&
        j.target_node_storage == job.target_node_storage && j.source_node_storage == job.source_node_storage)
      return false;
  }
  ReplicationEvent event;
  event.id = next_job_id_++;
  event.created_at = std::chrono::system_clock::now();
  event.job = std::move(job);
  event.correlation_id = correlation_id;
  jobs_.emplace(event.id, std::move(event));
  return true;
}

Status MemoryDatastore::CreateRepository(const NewRepository& repo) {
  std::vector<std::pair<std::string, std::string>> targets;
  {
    std::lock_guard lock(mu_);
    if (FindLocked(repo.virtual_storage, repo.relative_path) != nullptr)
      return Status(StatusCode::kAlreadyExists, "repository \"" + repo.relative_path + "\" already exists in virtual storage \"" +
                                                    repo.virtual_storage + "\"");
    for (const auto& [id, existing] : repositories_) {
      if (existing.replica_path == repo.replica_path || id == repo.repository_id)
        return Status(StatusCode::kAlreadyExists, "replica path \"" + repo.replica_path + "\" is taken");
    }
    RepositoryMetadata meta;
    meta.repository_id = repo.repository_id;
    meta.virtual_storage = repo.virtual_storage;
    meta.relative_path = repo.relative_path;
    meta.replica_path = repo.replica_path;
    meta.primary = repo.primary;
    meta.generation = 0;
    meta.replicas.push_back(Replica{repo.primary, 0});
    for (const auto& storage : repo.updated) {
      if (storage != repo.primary) meta.replicas.push_back(Replica{storage, 0});
    }
    meta.assigned = repo.assigned;
    std::sort(meta.assigned.begin(), meta.assigned.end());
    repositories_.emplace(repo.repository_id, meta);
    for (const auto& target : repo.outdated) {
      ReplicationJob job{ChangeType::kUpdate, repo.repository_id, repo.virtual_storage, repo.relative_path,
                         repo.replica_path, repo.primary, target};
      if (EnqueueLocked(std::move(job), repo.correlation_id)) targets.emplace_back(repo.virtual_storage, target);
    }
  }
  Notify(targets);
  return Status::Ok();
}

StatusOr<std::optional<RepositoryMetadata>> MemoryDatastore::GetRepository(std::string_view virtual_storage,
                                                                           std::string_view relative_path) {
  std::lock_guard lock(mu_);
  RepositoryMetadata* repo = FindLocked(virtual_storage, relative_path);
  if (repo == nullptr) return std::optional<RepositoryMetadata>();
  return std::optional<RepositoryMetadata>(*repo);
}

Status MemoryDatastore::RecordWrite(const Write& write) {
  std::vector<std::pair<std::string, std::string>> targets;
  {
    std::lock_guard lock(mu_);
    auto it = repositories_.find(write.repository_id);
    if (it == repositories_.end())
      return NotFound("repository " + std::to_string(write.repository_id) + " is no longer registered");
    RepositoryMetadata& repo = it->second;
    const int64_t next = repo.generation + 1;
    Replica* primary = FindReplica(repo, write.primary);
    if (primary == nullptr || primary->generation != repo.generation)
      return FailedPrecondition("storage \"" + write.primary + "\" is not at the latest generation of repository " +
                                std::to_string(write.repository_id) + ": it missed an earlier write");
    std::vector<std::string> took = write.updated;
    took.push_back(write.primary);
    // One of `updated` that was not at the latest generation is not bumped;
    // it gets a job as `outdated` do, or nothing would bring it up.
    std::vector<std::string> targets_of_write = write.outdated;
    for (const auto& storage : took) {
      Replica* r = FindReplica(repo, storage);
      if (r != nullptr && r->generation == repo.generation) {
        r->generation = next;
      } else if (std::find(targets_of_write.begin(), targets_of_write.end(), storage) == targets_of_write.end()) {
        targets_of_write.push_back(storage);
      }
    }
    repo.generation = next;
    for (const auto& target : targets_of_write) {
      ReplicationJob job{ChangeType::kUpdate, repo.repository_id, repo.virtual_storage, repo.relative_path,
                         repo.replica_path, write.primary, target};
      if (EnqueueLocked(std::move(job), write.correlation_id)) targets.emplace_back(repo.virtual_storage, target);
    }
  }
  Notify(targets);
  return Status::Ok();
}

Status MemoryDatastore::SetGeneration(int64_t repository_id, std::string_view storage, int64_t generation) {
  std::lock_guard lock(mu_);
  auto it = repositories_.find(repository_id);
  if (it == repositories_.end()) return NotFound("repository " + std::to_string(repository_id) + " is not registered");
  Replica* r = FindReplica(it->second, storage);
  if (r == nullptr) {
    it->second.replicas.push_back(Replica{std::string(storage), generation});
  } else {
    r->generation = std::max(r->generation, generation);
  }
  it->second.generation = std::max(it->second.generation, generation);
  return Status::Ok();
}

StatusOr<std::optional<RepositoryMetadata>> MemoryDatastore::DeleteRepository(std::string_view virtual_storage,
                                                                               std::string_view relative_path,
                                                                               std::string_view except_storage,
                                                                               std::string_view correlation_id) {
  std::vector<std::pair<std::string, std::string>> targets;
  std::optional<RepositoryMetadata> removed;
  {
    std::lock_guard lock(mu_);
    RepositoryMetadata* repo = FindLocked(virtual_storage, relative_path);
    if (repo == nullptr) return removed;
    removed = *repo;
    repositories_.erase(repo->repository_id);
    // Pending jobs of the repository would recreate what is being deleted.
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (it->second.job.repository_id == removed->repository_id && it->second.state == JobState::kReady) {
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& replica : removed->replicas) {
      if (replica.storage == except_storage) continue;
      ReplicationJob job{ChangeType::kDeleteReplica, removed->repository_id, removed->virtual_storage,
                         removed->relative_path, removed->replica_path, "", replica.storage};
      if (EnqueueLocked(std::move(job), std::string(correlation_id)))
        targets.emplace_back(removed->virtual_storage, replica.storage);
    }
  }
  Notify(targets);
  return removed;
}

StatusOr<std::vector<ReplicationEvent>> MemoryDatastore::Dequeue(std::string_view virtual_storage,
                                                                 std::string_view target_node_storage, int count) {
  std::lock_guard lock(mu_);
  std::vector<std::string> busy;
  for (const auto& [id, event] : jobs_) {
    if (event.state == JobState::kInProgress) busy.push_back(LockKey(event.job));
  }
  std::vector<ReplicationEvent> out;
  for (auto& [id, event] : jobs_) {
    if (static_cast<int>(out.size()) >= count) break;
    if (event.state != JobState::kReady || event.job.virtual_storage != virtual_storage ||
        event.job.target_node_storage != target_node_storage)
      continue;
    std::string key = LockKey(event.job);
    if (std::find(busy.begin(), busy.end(), key) != busy.end()) continue;
    busy.push_back(key);
    event.state = JobState::kInProgress;
    // delete_replica jobs spend no attempt (datastore.h).
    if (event.job.change != ChangeType::kDeleteReplica) --event.attempts_left;
    out.push_back(event);
  }
  return out;
}

StatusOr<std::vector<int64_t>> MemoryDatastore::Acknowledge(JobState state, const std::vector<int64_t>& ids) {
  if (state != JobState::kCompleted && state != JobState::kFailed && state != JobState::kDead)
    return InvalidArgument("acknowledging jobs as " + std::string(JobStateName(state)) +
                           ": only completed, failed or dead end a job");
  std::vector<std::pair<std::string, std::string>> targets;
  std::vector<int64_t> changed;
  {
    std::lock_guard lock(mu_);
    for (int64_t id : ids) {
      auto it = jobs_.find(id);
      if (it == jobs_.end() || it->second.state != JobState::kInProgress) continue;
      changed.push_back(id);
      const bool retry = state == JobState::kFailed && (it->second.attempts_left > 0 ||
                                                          it->second.job.change == ChangeType::kDeleteReplica);
      if (retry) {
        it->second.state = JobState::kReady;
        targets.emplace_back(it->second.job.virtual_storage, it->second.job.target_node_storage);
      } else {
        jobs_.erase(it);  // completed or dead: no row is kept
      }
    }
  }
  Notify(targets);
  return changed;
}

StatusOr<int64_t> MemoryDatastore::CountJobs(JobState state) {
  std::lock_guard lock(mu_);
  int64_t n = 0;
  for (const auto& [id, event] : jobs_) n += event.state == state;
  return n;
}

void MemoryDatastore::SetEnqueueListener(EnqueueListener listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

std::vector<ReplicationEvent> MemoryDatastore::Jobs() {
  std::lock_guard lock(mu_);
  std::vector<ReplicationEvent> out;
  for (const auto& [id, event] : jobs_) out.push_back(event);
  return out;
}

Status MemoryDatastore::RecordHealth(std::string_view praefect_name, const std::vector<NodeHealth>& checks) {
  std::lock_guard lock(mu_);
  const auto now = now_ ? now_() : std::chrono::steady_clock::now();
  for (const auto& check : checks) {
    HealthRow& row = node_status_[{std::string(praefect_name), check.virtual_storage, check.storage}];
    row.last_contact_attempt = now;
    if (check.healthy) row.last_seen_active = now;
  }
  return Status::Ok();
}

HealthyStorages MemoryDatastore::HealthyLocked(std::chrono::milliseconds window) {
  const auto now = now_ ? now_() : std::chrono::steady_clock::now();
  const auto since = now - window;
  std::map<std::string, std::set<std::string>> active;                      // vs → praefects
  std::map<std::pair<std::string, std::string>, int> votes;                 // (vs, storage) → praefects
  for (const auto& [key, row] : node_status_) {
    const auto& [praefect, vs, storage] = key;
    if (row.last_contact_attempt < since) continue;
    active[vs].insert(praefect);
    if (row.last_seen_active && *row.last_seen_active >= row.last_contact_attempt) ++votes[{vs, storage}];
  }
  HealthyStorages out;
  for (const auto& [key, n] : votes) {
    const size_t quorum = (active[key.first].size() + 1) / 2;
    if (static_cast<size_t>(n) >= quorum) out[key.first].push_back(key.second);
  }
  return out;
}

StatusOr<HealthyStorages> MemoryDatastore::GetHealthyStorages(std::chrono::milliseconds window) {
  std::lock_guard lock(mu_);
  return HealthyLocked(window);
}

StatusOr<PrimaryElection> MemoryDatastore::GetPrimary(int64_t repository_id, std::chrono::milliseconds window) {
  std::lock_guard lock(mu_);
  auto it = repositories_.find(repository_id);
  if (it == repositories_.end()) return NotFound("repository " + std::to_string(repository_id) + " is not registered");
  RepositoryMetadata& repo = it->second;
  HealthyStorages healthy = HealthyLocked(window);
  const std::vector<std::string>& healthy_here = healthy[repo.virtual_storage];
  auto pending_delete = [&](const std::string& storage) {
    for (const auto& [id, event] : jobs_) {
      if (event.job.repository_id == repository_id && event.job.change == ChangeType::kDeleteReplica &&
          event.job.target_node_storage == storage && event.state != JobState::kDead)
        return true;
    }
    return false;
  };
  std::vector<std::string> candidates, assigned_candidates;
  for (const auto& storage : repo.UpToDate()) {
    if (std::find(healthy_here.begin(), healthy_here.end(), storage) == healthy_here.end()) continue;
    if (pending_delete(storage)) continue;
    candidates.push_back(storage);
    if (!repo.assigned.empty() && repo.IsAssigned(storage)) assigned_candidates.push_back(storage);
  }
  const std::vector<std::string>& valid = assigned_candidates.empty() ? candidates : assigned_candidates;
  PrimaryElection out;
  out.previous = repo.primary;
  if (std::find(valid.begin(), valid.end(), repo.primary) != valid.end()) {
    out.primary = repo.primary;
    return out;
  }
  if (valid.empty()) {
    out.reason = ElectionFailureReason(repo, healthy_here);
  } else {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    out.primary = valid[std::uniform_int_distribution<size_t>(0, valid.size() - 1)(rng)];
  }
  out.changed = out.primary != repo.primary;
  repo.primary = out.primary;
  return out;
}

StatusOr<std::vector<std::string>> MemoryDatastore::SetReplicationFactor(std::string_view virtual_storage,
                                                                         std::string_view relative_path, int factor,
                                                                         const std::vector<std::string>& configured) {
  if (Status st = CheckReplicationFactor(factor, configured.size()); !st.ok()) return st;
  std::vector<std::pair<std::string, std::string>> targets;
  std::vector<std::string> assigned;
  {
    std::lock_guard lock(mu_);
    RepositoryMetadata* repo = FindLocked(virtual_storage, relative_path);
    if (repo == nullptr)
      return NotFound("repository \"" + std::string(relative_path) + "\" not found in virtual storage \"" +
                      std::string(virtual_storage) + "\"");
    std::vector<std::string> before = repo->assigned.empty() ? configured : repo->assigned;
    std::vector<std::string> after = PickAssignments(before, configured, repo->primary, factor);
    for (const auto& storage : after) {
      if (std::find(before.begin(), before.end(), storage) != before.end()) continue;
      ReplicationJob job{ChangeType::kUpdate, repo->repository_id, repo->virtual_storage, repo->relative_path,
                         repo->replica_path, repo->primary, storage};
      if (EnqueueLocked(std::move(job), "")) targets.emplace_back(repo->virtual_storage, storage);
    }
    for (const auto& storage : before) {
      if (std::find(after.begin(), after.end(), storage) != after.end()) continue;
      bool held = false;
      for (auto r = repo->replicas.begin(); r != repo->replicas.end();) {
        if (r->storage == storage) {
          held = true;
          r = repo->replicas.erase(r);
        } else {
          ++r;
        }
      }
      if (!held) continue;
      ReplicationJob job{ChangeType::kDeleteReplica, repo->repository_id, repo->virtual_storage, repo->relative_path,
                         repo->replica_path, "", storage};
      if (EnqueueLocked(std::move(job), "")) targets.emplace_back(repo->virtual_storage, storage);
    }
    repo->assigned = after;
    assigned = after;
  }
  Notify(targets);
  return assigned;
}

void MemoryDatastore::Notify(const std::vector<std::pair<std::string, std::string>>& targets) {
  EnqueueListener listener;
  {
    std::lock_guard lock(mu_);
    listener = listener_;
  }
  if (!listener) return;
  for (const auto& [vs, target] : targets) listener(vs, target);
}

}  // namespace praefect::datastore
