#include "reconcile/reconciler.h"

#include <algorithm>

#include "common/json.h"
#include "log/log.h"

namespace praefect::reconcile {
namespace {

using Clock = std::chrono::steady_clock;

// A scheduler that found Praefect's advisory lock taken retries this often,
// this many times, before the round gives up (the other holds it for one
// statement).
constexpr std::chrono::milliseconds kLockRetry{100};
constexpr int kLockAttempts = 100;
// A round wanted after a node's return that could not run (the lease was
// held, the database did not answer) is tried again this often.
constexpr std::chrono::milliseconds kRetry{1000};
// Praefect logs scheduled jobs in batches of this many.
constexpr size_t kLogBatch = 25;

std::chrono::milliseconds Since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

}  // namespace

Reconciler::Reconciler(datastore::ReconciliationStore* store, const nodes::NodeSet* nodes,
                       metrics::Metrics* metrics, Options options)
    : store_(store), nodes_(nodes), metrics_(metrics), options_(std::move(options)) {}

Reconciler::~Reconciler() { Stop(); }

void Reconciler::Start() {
  if (metrics_ != nullptr) {
    (void)metrics_->ReconciliationScheduling();
    // The jobs' series at 0 from the start, so that rate() has data.
    for (const auto& vs : nodes_->virtual_storages()) {
      for (auto change : {datastore::ChangeType::kUpdate, datastore::ChangeType::kDeleteReplica})
        (void)metrics_->ReconciliationJobs(vs.name, datastore::ChangeTypeName(change));
    }
  }
  thread_ = std::thread([this] { Loop(); });
}

void Reconciler::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

datastore::StoragePairs Reconciler::HealthyStorages(std::vector<std::string>* skipped) const {
  datastore::StoragePairs out;
  for (const auto& vs : nodes_->virtual_storages()) {
    datastore::StoragePairs mine;
    for (const auto& node : vs.nodes) {
      if (node->healthy.load()) mine.emplace_back(vs.name, node->storage);
    }
    // With one healthy storage there is nothing to replicate from or to.
    if (mine.size() < 2) {
      if (skipped != nullptr) skipped->push_back(vs.name);
      continue;
    }
    out.insert(out.end(), mine.begin(), mine.end());
  }
  return out;
}

void Reconciler::LogJobs(const std::vector<datastore::ScheduledJob>& jobs) const {
  for (size_t at = 0; at < jobs.size(); at += kLogBatch) {
    std::string json = "[";
    for (size_t i = at; i < std::min(jobs.size(), at + kLogBatch); ++i) {
      const datastore::ScheduledJob& j = jobs[i];
      if (i > at) json += ',';
      json += "{\"repository_id\":" + std::to_string(j.repository_id) + ",\"change\":";
      AppendJsonString(json, datastore::ChangeTypeName(j.change));
      json += ",\"correlation_id\":";
      AppendJsonString(json, j.correlation_id);
      json += ",\"virtual_storage\":";
      AppendJsonString(json, j.virtual_storage);
      json += ",\"relative_path\":";
      AppendJsonString(json, j.relative_path);
      if (!j.source_storage.empty()) {
        json += ",\"source_storage\":";
        AppendJsonString(json, j.source_storage);
      }
      json += ",\"target_storage\":";
      AppendJsonString(json, j.target_storage);
      json += '}';
    }
    json += ']';
    log::Info("reconciliation jobs scheduled", {log::Field::Json("scheduled_jobs", std::move(json))});
  }
}

StatusOr<RoundResult> Reconciler::RunRound(bool force) { return Round(std::nullopt, force); }

StatusOr<RoundResult> Reconciler::Round(std::optional<std::chrono::milliseconds> returned_ago, bool force) {
  std::lock_guard round(round_mu_);
  const auto started = Clock::now();
  RoundResult result;
  std::vector<std::string> skipped;
  const datastore::StoragePairs healthy = HealthyStorages(&skipped);
  for (const auto& vs : skipped)
    log::Info("reconciliation skipped for virtual storage due to not having enough healthy storages",
              {{"virtual_storage", vs}});
  if (healthy.empty()) {
    result.skipped = "no virtual storage has two healthy storages";
    return result;
  }
  auto lease = store_->TryStartReconciliation(options_.praefect_name,
                                              force ? std::chrono::milliseconds(0) : options_.interval, returned_ago,
                                              options_.lease);
  if (!lease.ok()) return lease.status();
  if (!lease->leader) {
    result.skipped = lease->holder.empty() ? "a round ran recently" : "praefect " + lease->holder + " is reconciling";
    return result;
  }
  result.ran = true;
  log::Info("reconciliation round started", {{"praefect_name", options_.praefect_name}});
  auto finish = [&](Status st) -> StatusOr<RoundResult> {
    result.took = Since(started);
    // Logged before the lease is given up: the next round's "started" (any
    // praefect's) comes after it, so the log shows rounds one at a time.
    if (st.ok()) {
      log::Info("reconciliation round done", {{"jobs", static_cast<long long>(result.jobs.size())},
                                              {"ranges", static_cast<long long>(result.ranges)},
                                              {"duration_ms", static_cast<long long>(result.took.count())}});
    } else {
      log::Warn("reconciliation round failed", {{"jobs", static_cast<long long>(result.jobs.size())},
                                                {"ranges", static_cast<long long>(result.ranges)},
                                                {"error", st.message()}});
    }
    if (Status ended = store_->EndReconciliation(options_.praefect_name); !ended.ok() && st.ok()) st = ended;
    if (metrics_ != nullptr)
      metrics_->ReconciliationScheduling().Observe(std::chrono::duration<double>(result.took).count());
    if (!st.ok()) return st;
    return result;
  };
  auto ids = store_->RepositoryIdRange();
  if (!ids.ok()) return finish(ids.status());
  if (!ids->has_value()) return finish(Status::Ok());
  const auto [first_id, last_id] = **ids;
  for (int64_t lo = first_id; lo <= last_id; lo += options_.range) {
    const int64_t hi = std::min(last_id, lo + options_.range - 1);
    auto jobs = store_->ScheduleReconciliation(healthy, lo, hi);
    for (int attempt = 1; !jobs.ok() && jobs.status().code() == StatusCode::kAborted && attempt < kLockAttempts;
         ++attempt) {
      std::this_thread::sleep_for(kLockRetry);
      jobs = store_->ScheduleReconciliation(healthy, lo, hi);
    }
    if (!jobs.ok())
      return finish(Status(jobs.status().code(), "reconciling repositories " + std::to_string(lo) + " to " +
                                                     std::to_string(hi) + ": " + jobs.status().message()));
    ++result.ranges;
    LogJobs(*jobs);
    if (metrics_ != nullptr) {
      for (const auto& j : *jobs) metrics_->ReconciliationJobs(j.virtual_storage, ChangeTypeName(j.change)).Increment();
    }
    result.jobs.insert(result.jobs.end(), std::make_move_iterator(jobs->begin()),
                       std::make_move_iterator(jobs->end()));
    {
      std::lock_guard lock(mu_);
      if (stopping_) return finish(Status::Ok());
    }
    if (hi < last_id) {
      if (Status st = store_->RenewReconciliation(options_.praefect_name, options_.lease); !st.ok())
        return finish(st);
    }
  }
  return finish(Status::Ok());
}

void Reconciler::RequestRound() {
  {
    std::lock_guard lock(mu_);
    requested_ = true;
  }
  cv_.notify_all();
}

void Reconciler::Loop() {
  std::map<std::string, bool> was_healthy;  // "<virtual storage>/<storage>"
  auto look = [&](bool first) {
    bool returned = false;
    for (const auto& vs : nodes_->virtual_storages()) {
      for (const auto& node : vs.nodes) {
        const bool now = node->healthy.load();
        bool& before = was_healthy[vs.name + "/" + node->storage];
        if (!first && now && !before) {
          log::Info("node is healthy again: reconciling its replicas now",
                    {{"virtual_storage", vs.name}, {"storage", node->storage}});
          returned = true;
        }
        before = now;
      }
    }
    return returned;
  };
  look(true);
  Clock::time_point next_regular = Clock::now() + options_.interval;
  // A node returned at returned_at and no round has covered it yet (a plain
  // pair: GCC 12 misreads an optional<time_point> as maybe uninitialized).
  bool return_pending = false;
  Clock::time_point returned_at{};
  Clock::time_point next_forced{};
  bool warned = false;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_for(lock, options_.health_poll, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    if (look(false)) {
      return_pending = true;
      returned_at = Clock::now();
      next_forced = Clock::now();
    }
    std::optional<StatusOr<RoundResult>> outcome;
    bool requested = false;
    {
      std::lock_guard relock(mu_);
      requested = requested_;
    }
    const bool forced = return_pending && Clock::now() >= next_forced;
    if (requested && Clock::now() >= next_forced) {
      // A round that starts from now on covers the request: forced past
      // the interval (the lease still keeps it one at a time).
      outcome = Round(std::nullopt, true);
      if (outcome->ok() && (*outcome)->ran) {
        std::lock_guard relock(mu_);
        requested_ = false;
        return_pending = false;
      } else {
        next_forced = Clock::now() + kRetry;
      }
    } else if (forced) {
      outcome = Round(Since(returned_at), false);
      if (outcome->ok() && ((*outcome)->ran || (*outcome)->skipped == "a round ran recently")) {
        return_pending = false;  // this round, or one that started after the return, covered it
      } else {
        next_forced = Clock::now() + kRetry;
      }
    } else if (Clock::now() >= next_regular) {
      outcome = Round(std::nullopt, false);
      next_regular = Clock::now() + options_.poll;
    }
    if (outcome.has_value()) {
      if (!outcome->ok()) {
        if (!warned)
          log::Warn("reconciliation failed; retrying", {{"error", outcome->status().message()}});
        warned = true;
      } else {
        warned = false;
      }
    }
    lock.lock();
  }
}

}  // namespace praefect::reconcile
