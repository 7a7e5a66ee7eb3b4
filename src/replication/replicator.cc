#include "replication/replicator.h"

#include <grpcpp/generic/generic_stub.h>

#include <algorithm>

#include "common/base64.h"
#include "common/json.h"
#include "log/log.h"
#include "nodes/node_call.h"
#include "praefect/gitaly_newer.pb.h"

namespace praefect::replication {
namespace {

Status FromGrpc(const grpc::Status& st, const std::string& what) {
  if (st.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(st.error_code()), what + ": " + st.error_message());
}

}  // namespace

std::string EncodeGitalyServers(const std::string& storage, const std::string& address, const std::string& token) {
  std::string json = "{";
  AppendJsonString(json, storage);
  json += ":{\"address\":";
  AppendJsonString(json, address);
  json += ",\"token\":";
  AppendJsonString(json, token);
  json += "}}";
  return Base64Encode(json);
}

struct Replicator::Worker {
  std::string virtual_storage;
  const nodes::Node* target = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  bool woken = false;
  std::thread thread;
};

Replicator::Replicator(datastore::Datastore* store, const nodes::NodeSet* nodes, metrics::Metrics* metrics,
                       Options options)
    : store_(store), nodes_(nodes), metrics_(metrics), options_(options) {
  if (metrics_ == nullptr) return;
  // The series exist from the start (0), as Praefect's, so that rate() and
  // increase() have data before the first job: delay and latency for
  // Praefect's four change types, jobs in progress and dead jobs per node
  // for updates (the change type that dies).
  for (std::string_view type : {"update", "create", "delete", "delete_replica"}) {
    (void)metrics_->ReplicationDelay(type);
    (void)metrics_->ReplicationLatency(type);
  }
  for (const auto& vs : nodes_->virtual_storages()) {
    for (const auto& node : vs.nodes) {
      const std::string_view update = datastore::ChangeTypeName(datastore::ChangeType::kUpdate);
      (void)metrics_->ReplicationDeadJobs(vs.name, node->storage, update);
      (void)metrics_->ReplicationJobs(vs.name, node->storage, update);
    }
  }
}

Replicator::~Replicator() { Stop(); }

void Replicator::Start() {
  for (const auto& vs : nodes_->virtual_storages()) {
    for (const auto& node : vs.nodes) {
      for (int i = 0; i < std::max(1, options_.workers_per_storage); ++i) {
        auto worker = std::make_unique<Worker>();
        worker->virtual_storage = vs.name;
        worker->target = node.get();
        workers_.push_back(std::move(worker));
      }
    }
  }
  store_->SetEnqueueListener(
      [this](const std::string& virtual_storage, const std::string& target) { Wake(virtual_storage, target); });
  for (auto& w : workers_) {
    Worker* worker = w.get();
    worker->thread = std::thread([this, worker] { Run(worker); });
  }
  janitor_ = std::thread([this] { Janitor(); });
}

void Replicator::Janitor() {
  std::unique_lock lock(janitor_mu_);
  while (!stopping_.load()) {
    janitor_cv_.wait_for(lock, options_.heartbeat_interval, [this] { return stopping_.load(); });
    if (stopping_.load()) break;
    std::vector<int64_t> ids;
    {
      std::lock_guard in(in_flight_mu_);
      ids.assign(in_flight_.begin(), in_flight_.end());
    }
    if (Status st = store_->Heartbeat(ids); !st.ok())
      log::Warn("replication: heartbeat of running jobs failed", {{"error", st.message()}});
    auto released = store_->ReleaseStale(options_.stale_after);
    if (released.ok() && *released > 0)
      log::Warn("replication: jobs of a worker that stopped were released for retry",
                {{"jobs", static_cast<long long>(*released)}});
  }
}

void Replicator::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard lock(janitor_mu_);
  }
  janitor_cv_.notify_all();
  if (janitor_.joinable()) janitor_.join();
  store_->SetEnqueueListener(nullptr);
  for (auto& w : workers_) {
    {
      std::lock_guard lock(w->mu);
      w->woken = true;
    }
    w->cv.notify_all();
  }
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

void Replicator::Wake(const std::string& virtual_storage, const std::string& target) {
  for (auto& w : workers_) {
    const bool any = virtual_storage.empty() && target.empty();
    if (any || (w->virtual_storage == virtual_storage && w->target->storage == target)) {
      {
        std::lock_guard lock(w->mu);
        w->woken = true;
      }
      w->cv.notify_all();
    }
  }
}

void Replicator::Run(Worker* worker) {
  std::chrono::milliseconds idle{50};
  // After a failed job, a pause before the next attempt (doubling to 5 s):
  // a node that just went down is then marked unhealthy by the health
  // checks before its jobs have burnt their attempts.
  std::chrono::milliseconds failure_pause{0};
  while (!stopping_.load()) {
    if (!worker->target->healthy.load()) {
      std::unique_lock lock(worker->mu);
      worker->cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_.load(); });
      continue;
    }
    auto jobs = store_->Dequeue(worker->virtual_storage, worker->target->storage, options_.batch_size);
    if (!jobs.ok()) {
      log::Warn("replication: cannot dequeue jobs; retrying",
                {{"virtual_storage", worker->virtual_storage},
                 {"storage", worker->target->storage},
                 {"error", jobs.status().message()}});
    } else if (!jobs->empty()) {
      idle = std::chrono::milliseconds(50);
      {
        std::lock_guard in(in_flight_mu_);
        for (const auto& event : *jobs) in_flight_.insert(event.id);
      }
      std::map<datastore::JobState, std::vector<int64_t>> outcome;
      for (const auto& event : *jobs) outcome[Process(event)].push_back(event.id);
      const bool any_failed = outcome.count(datastore::JobState::kFailed) + outcome.count(datastore::JobState::kDead) > 0;
      failure_pause = any_failed ? std::clamp(failure_pause * 2, std::chrono::milliseconds(500),
                                              std::chrono::milliseconds(5000))
                                 : std::chrono::milliseconds(0);
      Acknowledge(worker, outcome);
      {
        std::lock_guard in(in_flight_mu_);
        for (const auto& event : *jobs) in_flight_.erase(event.id);
      }
      if (failure_pause.count() > 0) {
        std::unique_lock lock(worker->mu);
        worker->cv.wait_for(lock, failure_pause, [&] { return stopping_.load(); });
      }
      continue;
    }
    // Nothing to do: sleep until woken by an enqueue, backing off.
    std::unique_lock lock(worker->mu);
    worker->cv.wait_for(lock, idle, [&] { return worker->woken || stopping_.load(); });
    worker->woken = false;
    idle = std::min(idle * 2, options_.max_idle_wait);
  }
}

// The jobs stay in in_flight_ (heartbeated) until their outcome is
// recorded: a database that cannot be reached for a moment would otherwise
// leave them in progress, their replicas locked, until the stale sweep,
// which then runs a completed job again or lets a failed one on its last
// attempt die. Retried until it succeeds or the replicator stops (then the
// stale sweep of whichever praefect runs next releases them).
void Replicator::Acknowledge(Worker* worker, const std::map<datastore::JobState, std::vector<int64_t>>& outcome) {
  std::chrono::milliseconds pause{100};
  for (const auto& [state, ids] : outcome) {
    for (;;) {
      auto acked = store_->Acknowledge(state, ids);
      if (acked.ok()) {
        if (acked->size() < ids.size())
          log::Warn("replication: jobs were released as stale while they ran (no heartbeat reached the "
                    "database in time); they run again under new ids",
                    {{"storage", worker->target->storage},
                     {"jobs", static_cast<long long>(ids.size() - acked->size())},
                     {"state", std::string(datastore::JobStateName(state))}});
        break;
      }
      if (stopping_.load()) {
        log::Warn("replication: stopping with jobs not acknowledged; the stale-job sweep releases them",
                  {{"storage", worker->target->storage}, {"error", acked.status().message()}});
        return;
      }
      log::Warn("replication: cannot acknowledge jobs; retrying",
                {{"storage", worker->target->storage},
                 {"state", std::string(datastore::JobStateName(state))},
                 {"error", acked.status().message()}});
      std::unique_lock lock(worker->mu);
      worker->cv.wait_for(lock, pause, [&] { return stopping_.load(); });
      pause = std::min(pause * 2, std::chrono::milliseconds(2000));
    }
  }
}

datastore::JobState Replicator::Process(const datastore::ReplicationEvent& event) {
  const auto& job = event.job;
  const auto started = std::chrono::system_clock::now();
  const std::string type(datastore::ChangeTypeName(job.change));
  std::optional<metrics::Gauge> in_progress;
  if (metrics_ != nullptr) {
    metrics_->ReplicationDelay(type).Observe(std::chrono::duration<double>(started - event.created_at).count());
    in_progress = metrics_->ReplicationJobs(job.virtual_storage, job.target_node_storage, type);
    in_progress->Increment();
  }
  Status st = job.change == datastore::ChangeType::kUpdate ? Update(job) : DeleteReplica(job);
  if (metrics_ != nullptr) {
    in_progress->Decrement();
    // As Praefect: the latency of successful jobs only.
    if (st.ok())
      metrics_->ReplicationLatency(type).Observe(
          std::chrono::duration<double>(std::chrono::system_clock::now() - started).count());
  }
  if (st.ok()) return datastore::JobState::kCompleted;
  // delete_replica jobs never die (Dequeue spends none of their attempts).
  const bool dies = job.change == datastore::ChangeType::kUpdate && event.attempts_left <= 0;
  if (dies && metrics_ != nullptr)
    metrics_->ReplicationDeadJobs(job.virtual_storage, job.target_node_storage, type).Increment();
  if (dies && options_.on_dead) options_.on_dead(job);
  log::Warn(dies ? "replication job died: its replica stays outdated until the reconciler schedules it again"
                 : "replication job failed",
            {{"job_id", static_cast<long long>(event.id)},
             {"change", type},
             {"virtual_storage", job.virtual_storage},
             {"relative_path", job.relative_path},
             {"target", job.target_node_storage},
             {"attempts_left", event.attempts_left},
             {"correlation_id", event.correlation_id},
             {"error", st.message()}});
  return dies ? datastore::JobState::kDead : datastore::JobState::kFailed;
}

Status Replicator::RunJob(const datastore::ReplicationJob& job) {
  return job.change == datastore::ChangeType::kDeleteReplica ? DeleteReplica(job) : Update(job);
}

Status Replicator::Update(const datastore::ReplicationJob& job) {
  const nodes::VirtualStorage* vs = nodes_->Find(job.virtual_storage);
  if (vs == nullptr) return NotFound("virtual storage \"" + job.virtual_storage + "\" is no longer configured");
  const nodes::Node* target = vs->FindNode(job.target_node_storage);
  if (target == nullptr) return NotFound("node \"" + job.target_node_storage + "\" is no longer configured");
  auto meta = store_->GetRepository(job.virtual_storage, job.relative_path);
  if (!meta.ok()) return meta.status();
  if (!meta->has_value() || (*meta)->repository_id != job.repository_id) return Status::Ok();  // deleted since
  // The source: the job's, when it is still up to date and healthy, else
  // any healthy replica that is up to date (the job's source may have
  // failed since: its primary died and another took over), else the job's.
  std::vector<std::string> up_to_date = (*meta)->UpToDate();
  auto usable = [&](const std::string& s) {
    const nodes::Node* n = vs->FindNode(s);
    return s != target->storage && n != nullptr && n->healthy.load() &&
           std::find(up_to_date.begin(), up_to_date.end(), s) != up_to_date.end();
  };
  std::string source_storage = job.source_node_storage;
  if (!usable(source_storage)) {
    for (const auto& s : up_to_date) {
      if (usable(s)) source_storage = s;
    }
  }
  if (std::find(up_to_date.begin(), up_to_date.end(), source_storage) == up_to_date.end()) {
    source_storage.clear();
    for (const auto& s : up_to_date) {
      if (s != target->storage) source_storage = s;
    }
  }
  if (source_storage.empty() || source_storage == target->storage) {
    // Already up to date (or nothing to pull from).
    return Status::Ok();
  }
  const nodes::Node* source = vs->FindNode(source_storage);
  if (source == nullptr) return NotFound("source node \"" + source_storage + "\" is no longer configured");
  int64_t source_generation = 0, target_generation = -1;  // -1: no replica recorded
  for (const auto& r : (*meta)->replicas) {
    if (r.storage == source_storage) source_generation = r.generation;
    if (r.storage == target->storage) target_generation = r.generation;
  }
  // A target at the source's generation or above has nothing to take. The
  // source is up to date, so this is a target that caught up: a redundant
  // job (one is queued per write while another runs), whose replication
  // from another replica at the same recorded generation could overwrite a
  // write the target (the primary by now) has taken and not yet recorded.
  // Above the source it cannot be today; Praefect calls that "repository
  // downgrade prevented".
  if (target_generation >= source_generation) {
    // Info for the rare downgrade, debug for the common redundant job.
    log::Default().Log(target_generation == source_generation ? log::Level::kDebug : log::Level::kInfo,
               target_generation == source_generation
                   ? "target repository already on the same generation, skipping replication job"
                   : "repository downgrade prevented",
               {{"virtual_storage", job.virtual_storage},
                {"relative_path", job.relative_path},
                {"source", source_storage},
                {"target", job.target_node_storage},
                {"source_generation", static_cast<long long>(source_generation)},
                {"target_generation", static_cast<long long>(target_generation)}});
    return Status::Ok();
  }
  gitaly::ReplicateRepositoryRequest req;
  req.mutable_repository()->set_storage_name(target->storage);
  req.mutable_repository()->set_relative_path(job.replica_path);
  req.mutable_source()->set_storage_name(source->storage);
  req.mutable_source()->set_relative_path(job.replica_path);
  grpc::Status st = nodes::CallNode(*target, "/gitaly.RepositoryService/ReplicateRepository", req.SerializeAsString(),
                             options_.job_timeout,
                             {{"gitaly-servers", EncodeGitalyServers(source->storage, source->address, source->Token())}});
  if (Status s = FromGrpc(st, "ReplicateRepository on " + target->Label()); !s.ok()) return s;
  Status recorded = store_->SetGeneration(job.repository_id, target->storage, source_generation);
  if (recorded.code() == StatusCode::kNotFound) {
    // The repository was removed while this replica was being made: its
    // removal's deletions may have run before the replica existed. Remove
    // it here, or it stays on the node as an orphan. (Repository ids are
    // never reused, so the replica path is this repository's alone.)
    log::Info("replicated a repository that was removed meanwhile: removing the new replica",
              {{"virtual_storage", job.virtual_storage},
               {"relative_path", job.relative_path},
               {"replica_path", job.replica_path},
               {"target", job.target_node_storage}});
    datastore::ReplicationJob removal = job;
    removal.change = datastore::ChangeType::kDeleteReplica;
    return DeleteReplica(removal);
  }
  return recorded;
}

Status Replicator::DeleteReplica(const datastore::ReplicationJob& job) {
  const nodes::VirtualStorage* vs = nodes_->Find(job.virtual_storage);
  if (vs == nullptr) return NotFound("virtual storage \"" + job.virtual_storage + "\" is no longer configured");
  const nodes::Node* target = vs->FindNode(job.target_node_storage);
  if (target == nullptr) return NotFound("node \"" + job.target_node_storage + "\" is no longer configured");
  gitaly::RemoveRepositoryRequest req;
  req.mutable_repository()->set_storage_name(target->storage);
  req.mutable_repository()->set_relative_path(job.replica_path);
  grpc::Status st = nodes::CallNode(*target, "/gitaly.RepositoryService/RemoveRepository", req.SerializeAsString(),
                             options_.job_timeout, {});
  if (st.error_code() == grpc::StatusCode::NOT_FOUND) return Status::Ok();
  return FromGrpc(st, "RemoveRepository on " + target->Label());
}

}  // namespace praefect::replication
