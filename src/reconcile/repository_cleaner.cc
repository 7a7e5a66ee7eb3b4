#include "reconcile/repository_cleaner.h"

#include "log/log.h"
#include "reconcile/untracked.h"

namespace praefect::reconcile {
namespace {

using Clock = std::chrono::steady_clock;

long long Millis(Clock::duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

Status DatabaseFailed(Status st) {
  log::Warn("repository cleanup could not claim a storage in the database; it tries again after check_interval",
            {{"error", st.message()}});
  return st;
}

}  // namespace

RepositoryCleaner::RepositoryCleaner(datastore::StorageCleanupStore* turns, datastore::TrackingStore* records,
                                     const nodes::NodeSet* nodes, metrics::Metrics* metrics, CleanerOptions options)
    : turns_(turns), records_(records), nodes_(nodes), metrics_(metrics), options_(std::move(options)) {
  for (const auto& vs : nodes_->virtual_storages()) {
    for (const auto& node : vs.nodes) storages_.emplace_back(vs.name, node->storage);
  }
}

RepositoryCleaner::~RepositoryCleaner() { Stop(); }

void RepositoryCleaner::Start() {
  // Every storage's series at 0 from the start, so that increase() has data.
  if (metrics_ != nullptr) {
    for (const auto& [vs, storage] : storages_) (void)metrics_->UntrackedRepositories(vs, storage);
  }
  thread_ = std::thread([this] { Loop(); });
}

void RepositoryCleaner::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool RepositoryCleaner::Stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

StatusOr<CleanupPass> RepositoryCleaner::RunOnce() {
  {
    std::lock_guard lock(mu_);
    if (!populated_) {
      if (Status st = turns_->PopulateStorageCleanups(storages_); !st.ok()) return DatabaseFailed(st);
      populated_ = true;
    }
  }
  auto claim = turns_->ClaimStorageCleanup(storages_, options_.run_interval, options_.liveness);
  if (!claim.ok()) return DatabaseFailed(claim.status());
  CleanupPass pass;
  if (!claim->has_value()) {
    log::Debug("repository cleanup: no storage is due");
    return pass;
  }
  pass.ran = true;
  pass.virtual_storage = (*claim)->virtual_storage;
  pass.storage = (*claim)->storage;
  const auto started = Clock::now();
  Status walked = Walk(**claim, &pass);
  // The pass counts as done even when the walk failed (as Praefect): the
  // storage's turn comes again after run_interval, not at once.
  Status finished = turns_->FinishStorageCleanup(**claim);
  if (!walked.ok()) {
    log::Warn("repository cleanup of a storage failed; it is tried again after run_interval",
              {{"virtual_storage", pass.virtual_storage},
               {"storage", pass.storage},
               {"untracked_repositories", static_cast<long long>(pass.untracked)},
               {"error", walked.message()}});
    return walked;
  }
  log::Info("repository cleanup of a storage done",
            {{"virtual_storage", pass.virtual_storage},
             {"storage", pass.storage},
             {"untracked_repositories", static_cast<long long>(pass.untracked)},
             {"duration_ms", Millis(Clock::now() - started)}});
  if (!finished.ok()) return finished;
  return pass;
}

Status RepositoryCleaner::Walk(const datastore::CleanupClaim& claim, CleanupPass* pass) {
  const nodes::VirtualStorage* vs = nodes_->Find(claim.virtual_storage);
  const nodes::Node* node = nullptr;
  if (vs != nullptr) {
    for (const auto& n : vs->nodes) {
      if (n->storage == claim.storage) node = n.get();
    }
  }
  if (node == nullptr) return NotFound("storage " + claim.storage + " is not configured");
  UntrackedWalk walk;
  walk.virtual_storage = claim.virtual_storage;
  walk.storage = claim.storage;
  walk.address = node->address;
  walk.token = node->Token();
  walk.channel = node->channel;
  walk.cutoff = std::chrono::system_clock::now() -
                std::chrono::duration_cast<std::chrono::system_clock::duration>(options_.min_age);
  walk.batch = options_.repositories_in_batch;
  auto refreshed = Clock::now();
  // Refreshed well within the liveness, so no other praefect takes the
  // storage while this one walks it.
  const auto refresh_every = options_.liveness / 3;
  return WalkUntracked(
      walk, records_,
      [&](const std::string& path) {
        ++pass->untracked;
        log::Warn("repository is not managed by praefect", {{"virtual_storage", claim.virtual_storage},
                                                             {"storage", claim.storage},
                                                             {"relative_replica_path", path}});
        if (metrics_ != nullptr) metrics_->UntrackedRepositories(claim.virtual_storage, claim.storage).Increment();
        return Status::Ok();
      },
      [&]() -> Status {
        if (Stopping()) return Status(StatusCode::kCancelled, "praefect is stopping");
        if (Clock::now() - refreshed >= refresh_every) {
          if (Status st = turns_->RefreshStorageCleanup(claim); !st.ok()) return st;
          refreshed = Clock::now();
        }
        return Status::Ok();
      });
}

void RepositoryCleaner::Loop() {
  while (true) {
    (void)RunOnce();  // what failed is logged
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.check_interval, [this] { return stopping_; })) return;
  }
}

}  // namespace praefect::reconcile
