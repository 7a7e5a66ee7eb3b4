#include "reconcile/verifier.h"

#include <algorithm>
#include <map>
#include <string>

#include "common/json.h"
#include "log/log.h"

namespace praefect::reconcile {
namespace {

using Clock = std::chrono::steady_clock;

// Praefect's log shape of a set of replicas: {"<virtual storage>":
// {"<relative path>": ["<storage>", ...]}}, every level sorted.
std::string ReplicasJson(const std::vector<const datastore::VerificationJob*>& jobs) {
  std::map<std::string, std::map<std::string, std::vector<std::string>>> grouped;
  for (const datastore::VerificationJob* j : jobs) grouped[j->virtual_storage][j->relative_path].push_back(j->storage);
  std::string json = "{";
  for (auto vs = grouped.begin(); vs != grouped.end(); ++vs) {
    if (vs != grouped.begin()) json += ',';
    AppendJsonString(json, vs->first);
    json += ":{";
    for (auto rel = vs->second.begin(); rel != vs->second.end(); ++rel) {
      if (rel != vs->second.begin()) json += ',';
      AppendJsonString(json, rel->first);
      json += ":[";
      std::vector<std::string> storages = rel->second;
      std::sort(storages.begin(), storages.end());
      for (size_t i = 0; i < storages.size(); ++i) {
        if (i > 0) json += ',';
        AppendJsonString(json, storages[i]);
      }
      json += ']';
    }
    json += '}';
  }
  json += '}';
  return json;
}

// The result label of gitaly_praefect_verification_jobs_completed_total.
const char* Outcome(const datastore::VerificationResult& r) {
  if (!r.answered) return "error";
  return r.exists ? "valid" : "invalid";
}

std::chrono::milliseconds Since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

}  // namespace

Verifier::Verifier(datastore::VerificationStore* store, const nodes::NodeSet* nodes, ExistenceCheck check,
                   metrics::Metrics* metrics, VerifierOptions options)
    : store_(store), nodes_(nodes), check_(std::move(check)), metrics_(metrics), options_(std::move(options)) {}

Verifier::~Verifier() { Stop(); }

void Verifier::Start() {
  if (metrics_ != nullptr) {
    // Every series from the start, at 0, as Praefect: rate() and alerts on
    // result="invalid" work before the first missing replica.
    for (const auto& vs : nodes_->virtual_storages()) {
      for (const auto& node : vs.nodes) {
        (void)metrics_->VerificationJobsDequeued(vs.name, node->storage);
        for (const char* result : {"valid", "invalid", "error"})
          (void)metrics_->VerificationJobsCompleted(vs.name, node->storage, result);
      }
    }
    (void)metrics_->StaleVerificationLeasesReleased();
  }
  thread_ = std::thread([this] { Loop(); });
}

void Verifier::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  abandon_.store(true);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

datastore::StoragePairs Verifier::HealthyStorages() const {
  datastore::StoragePairs out;
  for (const auto& vs : nodes_->virtual_storages()) {
    for (const auto& node : vs.nodes) {
      if (node->healthy.load()) out.emplace_back(vs.name, node->storage);
    }
  }
  return out;
}

std::vector<datastore::VerificationResult> Verifier::Check(const std::vector<datastore::VerificationJob>& jobs,
                                                           std::chrono::milliseconds timeout) {
  std::vector<datastore::VerificationResult> results(jobs.size());
  std::vector<Status> errors(jobs.size());
  // One thread per replica: at most a batch (25) of short calls, every 2 s.
  std::vector<std::thread> threads;
  threads.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    results[i].job = jobs[i];
    threads.emplace_back([this, i, timeout, &jobs, &results, &errors] {
      StatusOr<bool> exists = check_(jobs[i], timeout, &abandon_);
      if (exists.ok()) {
        results[i].answered = true;
        results[i].exists = *exists;
      } else {
        errors[i] = exists.status();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (results[i].answered) continue;
    const datastore::VerificationJob& j = jobs[i];
    log::Error("failed to verify replica's existence", {{"repository_id", static_cast<long long>(j.repository_id)},
                                                         {"replica_path", j.replica_path},
                                                         {"virtual_storage", j.virtual_storage},
                                                         {"storage", j.storage},
                                                         {"relative_path", j.relative_path},
                                                         {"error", errors[i].message()}});
  }
  return results;
}

void Verifier::Report(const std::vector<datastore::VerificationResult>& results, BatchResult* out) {
  std::vector<const datastore::VerificationJob*> invalid;
  for (const auto& r : results) {
    if (!r.answered) {
      ++out->errors;
    } else if (!r.exists) {
      ++out->invalid;
      invalid.push_back(&r.job);
    } else {
      ++out->valid;
    }
  }
  // Logged before the records change, and also when they are kept: the
  // operator learns of the loss either way.
  if (!invalid.empty())
    log::Info("removing metadata records of non-existent replicas",
              {{"perform_deletions", options_.delete_invalid_records},
               log::Field::Json("replicas", ReplicasJson(invalid))});
}

StatusOr<BatchResult> Verifier::RunBatch() {
  std::lock_guard batch(batch_mu_);
  const auto started = Clock::now();
  BatchResult out;
  const datastore::StoragePairs healthy = HealthyStorages();
  if (healthy.empty()) return out;
  auto jobs = store_->LeaseVerificationJobs(healthy, options_.interval, options_.batch, options_.lease);
  if (!jobs.ok()) return Status(jobs.status().code(), "leasing replicas to verify: " + jobs.status().message());
  out.leased = jobs->size();
  if (jobs->empty()) return out;
  if (metrics_ != nullptr) {
    for (const auto& j : *jobs) metrics_->VerificationJobsDequeued(j.virtual_storage, j.storage).Increment();
  }
  // The checks get what is left of the lease: a result recorded after the
  // lease ran out could meet another praefect's check of the same replica.
  const auto left = std::max(options_.lease - Since(started), std::chrono::milliseconds(1));
  std::vector<datastore::VerificationResult> results = Check(*jobs, left);
  Report(results, &out);
  auto recorded = store_->RecordVerification(results, options_.delete_invalid_records);
  if (!recorded.ok())
    return Status(recorded.status().code(), "recording the verification of " + std::to_string(results.size()) +
                                                " replicas (their leases expire by themselves): " +
                                                recorded.status().message());
  out.removed = recorded->removed;
  if (out.removed > 0 && options_.on_records_removed) options_.on_records_removed();
  // Counted once recorded, as Praefect: a batch whose results were lost is
  // checked again and counted then.
  if (metrics_ != nullptr) {
    for (const auto& r : results)
      metrics_->VerificationJobsCompleted(r.job.virtual_storage, r.job.storage, Outcome(r)).Increment();
  }
  if (recorded->changed > 0)
    log::Info("kept the records of missing replicas written since their check; they are checked again",
              {{"replicas", static_cast<long long>(recorded->changed)}});
  return out;
}

StatusOr<int64_t> Verifier::ReleaseStaleLeases() {
  int64_t total = 0;
  for (;;) {
    // A lease counts as stale once it has been expired for a lease's
    // length: its holder is not merely slow to record.
    auto released = store_->ReleaseStaleVerificationLeases(options_.lease, options_.batch);
    if (!released.ok())
      return Status(released.status().code(), "releasing stale verification leases: " + released.status().message());
    if (!released->empty()) {
      std::vector<const datastore::VerificationJob*> jobs;
      for (const auto& j : *released) jobs.push_back(&j);
      if (metrics_ != nullptr) metrics_->StaleVerificationLeasesReleased().Increment(static_cast<double>(jobs.size()));
      log::Info("released stale verification leases", {log::Field::Json("leases_released", ReplicasJson(jobs))});
    }
    total += static_cast<int64_t>(released->size());
    if (static_cast<int>(released->size()) < options_.batch) return total;
    std::lock_guard lock(mu_);
    if (stopping_) return total;
  }
}

void Verifier::Loop() {
  auto next_batch = Clock::now() + options_.poll;
  auto next_release = Clock::now() + options_.release_poll;
  // Failures are logged once until the next success: a database that is
  // away would otherwise log every 2 s.
  bool batch_failing = false, release_failing = false;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    cv_.wait_until(lock, std::min(next_batch, next_release), [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    if (Clock::now() >= next_batch) {
      auto done = RunBatch();
      if (!done.ok() && !batch_failing)
        log::Error("failed a background verification run", {{"error", done.status().message()}});
      batch_failing = !done.ok();
      // A full batch: more are due (after praefect verify, or a new
      // cluster); the next one at once.
      const bool full = done.ok() && static_cast<int>(done->leased) >= options_.batch;
      next_batch = full ? Clock::now() : Clock::now() + options_.poll;
    }
    if (Clock::now() >= next_release) {
      auto released = ReleaseStaleLeases();
      if (!released.ok() && !release_failing)
        log::Error("failed releasing expired leases", {{"error", released.status().message()}});
      release_failing = !released.ok();
      next_release = Clock::now() + options_.release_poll;
    }
    lock.lock();
  }
}

}  // namespace praefect::reconcile
