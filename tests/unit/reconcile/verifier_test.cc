// The Verifier over a scripted VerificationStore and a scripted check: what
// a batch leases, checks and records, its logs and metrics, the healthy
// storages it passes, the deadline of its checks, batches back to back
// while they come full, the release of stale leases, and a stop in the
// middle of a batch. The SQL is tested against PostgreSQL in
// verification_store_test; the whole repair end to end in
// tests/e2e/verification_test.py.
#include "reconcile/verifier.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "log/log.h"
#include "metrics/metrics.h"
#include "nodes/three_nodes.h"
#include "test_support.h"

namespace {

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;
using praefect::datastore::StoragePairs;
using praefect::datastore::VerificationJob;
using praefect::datastore::VerificationRecorded;
using praefect::datastore::VerificationResult;
using praefect::nodes::NodeSet;
using praefect::nodes::testing::SetHealthy;
using praefect::nodes::testing::ThreeNodes;
using praefect::reconcile::ExistenceCheck;
using praefect::reconcile::Verifier;
using praefect::reconcile::VerifierOptions;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

VerificationJob Job(int64_t id, const std::string& storage) {
  VerificationJob j;
  j.repository_id = id;
  j.virtual_storage = "default";
  j.relative_path = "r" + std::to_string(id) + ".git";
  j.replica_path = "@cluster/repositories/" + std::to_string(id);
  j.storage = storage;
  return j;
}

// A store that hands out the scripted batches, one per lease, and records
// what it was asked.
class FakeStore : public praefect::datastore::VerificationStore {
 public:
  StatusOr<std::vector<VerificationJob>> LeaseVerificationJobs(const StoragePairs& healthy, milliseconds interval,
                                                               int limit, milliseconds lease) override {
    std::lock_guard lock(mu);
    lease_times.push_back(Clock::now());
    last_healthy = healthy;
    last_interval = interval;
    last_limit = limit;
    last_lease = lease;
    if (batches.empty()) return std::vector<VerificationJob>();
    auto batch = batches.front();
    batches.erase(batches.begin());
    return batch;
  }
  StatusOr<VerificationRecorded> RecordVerification(const std::vector<VerificationResult>& results,
                                                    bool delete_invalid) override {
    std::lock_guard lock(mu);
    if (fail_record) return Status(StatusCode::kUnavailable, "database unavailable");
    recorded.insert(recorded.end(), results.begin(), results.end());
    last_delete = delete_invalid;
    VerificationRecorded out;
    for (const auto& r : results) out.removed += delete_invalid && r.answered && !r.exists;
    return out;
  }
  StatusOr<std::vector<VerificationJob>> ReleaseStaleVerificationLeases(milliseconds expired_for,
                                                                        int limit) override {
    std::lock_guard lock(mu);
    ++releases;
    last_expired_for = expired_for;
    std::vector<VerificationJob> out;
    for (int i = 0; i < limit && stale > 0; ++i, --stale) out.push_back(Job(1000 + stale, "gitaly-2"));
    return out;
  }

  std::mutex mu;
  std::vector<std::vector<VerificationJob>> batches;
  std::vector<Clock::time_point> lease_times;
  StoragePairs last_healthy;
  milliseconds last_interval{0}, last_lease{0}, last_expired_for{0};
  int last_limit = 0;
  std::vector<VerificationResult> recorded;
  bool last_delete = false;
  bool fail_record = false;
  int stale = 0;
  int releases = 0;
};

// Log lines as "<level>: <message> <fields as text>".
class CaptureSink : public praefect::log::Sink {
 public:
  void Write(const praefect::log::Entry& e) override {
    std::string line = std::string(praefect::log::LevelName(e.level)) + ": " + std::string(e.message);
    praefect::log::AppendTextFields(line, e.fields);
    std::lock_guard lock(mu_);
    lines_.push_back(line);
  }
  std::vector<std::string> With(const std::string& prefix) {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& l : lines_)
      if (l.starts_with(prefix)) out.push_back(l);
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

struct CaptureLogs {
  CaptureLogs() { praefect::log::Default().SetSink(sink); }
  ~CaptureLogs() {
    praefect::log::Default().SetSink(std::make_shared<praefect::log::StreamSink>(2, praefect::log::Format::kText));
  }
  std::shared_ptr<CaptureSink> sink = std::make_shared<CaptureSink>();
};

// The replicas with id 2 are missing, id 3's node fails; every other exists.
StatusOr<bool> Scripted(const VerificationJob& job, milliseconds, const std::atomic<bool>*) {
  if (job.repository_id == 3) return Status(StatusCode::kUnavailable, "connection refused");
  return job.repository_id != 2;
}

VerifierOptions TestOptions() {
  VerifierOptions o;
  o.interval = std::chrono::hours(1);
  o.poll = std::chrono::hours(1);
  o.release_poll = std::chrono::hours(1);
  return o;
}

template <typename Pred>
bool PollUntil(Pred pred, milliseconds timeout) {
  for (auto deadline = Clock::now() + timeout; Clock::now() < deadline;) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return pred();
}

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void ABatchChecksRecordsLogsAndCounts(void**) {
  CaptureLogs logs;
  FakeStore store;
  store.batches = {{Job(1, "gitaly-1"), Job(2, "gitaly-2"), Job(2, "gitaly-1"), Job(3, "gitaly-3")}};
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  praefect::metrics::Metrics metrics({});
  ExistenceCheck check = [](const VerificationJob& job, milliseconds t, const std::atomic<bool>* a) {
    return job.repository_id == 2 && job.storage == "gitaly-1" ? StatusOr<bool>(false) : Scripted(job, t, a);
  };
  Verifier verifier(&store, nodes.get(), check, &metrics, TestOptions());
  auto batch = verifier.RunBatch();
  assert_status_ok(batch.status());
  expect_that(batch->leased == 4 && batch->valid == 1 && batch->invalid == 2 && batch->errors == 1 &&
                  batch->removed == 2,
              "1 valid, 2 invalid (removed), 1 error");
  expect_that(store.last_limit == 25 && store.last_lease == milliseconds(30000) &&
                  store.last_interval == std::chrono::hours(1),
              "batches of 25, leased for 30 s, due after the interval");
  expect_that(store.last_delete, "deletions on by default");
  std::sort(store.recorded.begin(), store.recorded.end(), [](const auto& a, const auto& b) {
    return std::tie(a.job.repository_id, a.job.storage) < std::tie(b.job.repository_id, b.job.storage);
  });
  expect_that(store.recorded.size() == 4 && store.recorded[0].answered && store.recorded[0].exists &&
                  store.recorded[1].answered && !store.recorded[1].exists && store.recorded[2].answered &&
                  !store.recorded[2].exists && !store.recorded[3].answered,
              "every result recorded as found");
  auto removing = logs.sink->With("info: removing metadata records of non-existent replicas");
  expect_that(removing.size() == 1 && Has(removing[0], "perform_deletions=true") &&
                  Has(removing[0], R"(replicas="{\"default\":{\"r2.git\":[\"gitaly-1\",\"gitaly-2\"]}}")"),
              "one line naming the missing replicas, storages sorted, got " +
                  (removing.empty() ? std::string("none") : removing[0]));
  auto failed = logs.sink->With("error: failed to verify replica's existence");
  expect_that(failed.size() == 1 && Has(failed[0], "repository_id=3") && Has(failed[0], "storage=gitaly-3") &&
                  Has(failed[0], "replica_path=@cluster/repositories/3") && Has(failed[0], "relative_path=r3.git") &&
                  Has(failed[0], "virtual_storage=default") && Has(failed[0], "connection refused"),
              "the failed check logged with the replica, got " + (failed.empty() ? std::string("none") : failed[0]));
  const std::string rendered = metrics.Render();
  for (const char* series :
       {"gitaly_praefect_verification_jobs_dequeued_total{storage=\"gitaly-1\",virtual_storage=\"default\"} 2",
        "gitaly_praefect_verification_jobs_completed_total{result=\"invalid\",storage=\"gitaly-1\","
        "virtual_storage=\"default\"} 1",
        "gitaly_praefect_verification_jobs_completed_total{result=\"valid\",storage=\"gitaly-1\","
        "virtual_storage=\"default\"} 1",
        "gitaly_praefect_verification_jobs_completed_total{result=\"error\",storage=\"gitaly-3\","
        "virtual_storage=\"default\"} 1"})
    expect_that(Has(rendered, series), std::string("the series ") + series + ", got\n" + rendered);
}

void WithoutDeletionsTheLossIsOnlyReported(void**) {
  CaptureLogs logs;
  FakeStore store;
  store.batches = {{Job(2, "gitaly-2")}};
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  VerifierOptions options = TestOptions();
  options.delete_invalid_records = false;
  Verifier verifier(&store, nodes.get(), Scripted, nullptr, options);
  auto batch = verifier.RunBatch();
  expect_that(batch.ok() && batch->invalid == 1 && batch->removed == 0, "one invalid replica, nothing removed");
  expect_that(!store.last_delete, "the store is told not to delete");
  auto removing = logs.sink->With("info: removing metadata records of non-existent replicas");
  expect_that(removing.size() == 1 && Has(removing[0], "perform_deletions=false"),
              "logged with perform_deletions=false");
}

void ResultsThatCouldNotBeRecordedAreNotCounted(void**) {
  FakeStore store;
  store.fail_record = true;
  store.batches = {{Job(1, "gitaly-1"), Job(2, "gitaly-1")}};
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1"});
  praefect::metrics::Metrics metrics({});
  Verifier verifier(&store, nodes.get(), Scripted, &metrics, TestOptions());
  auto batch = verifier.RunBatch();
  expect_that(batch.status().code() == StatusCode::kUnavailable &&
                  Has(batch.status().message(), "recording the verification of 2 replicas") &&
                  Has(batch.status().message(), "database unavailable"),
              "the store's error, saying what failed, got " + batch.status().ToString());
  const std::string rendered = metrics.Render();
  expect_that(Has(rendered, "gitaly_praefect_verification_jobs_dequeued_total{storage=\"gitaly-1\","
                            "virtual_storage=\"default\"} 2") &&
                  !Has(rendered, "gitaly_praefect_verification_jobs_completed_total{result=\"invalid\","
                                 "storage=\"gitaly-1\",virtual_storage=\"default\"} 1"),
              "dequeued counted, completed not (the replicas stay due), got\n" + rendered);
}

void OnlyLocallyHealthyStoragesAreVerified(void**) {
  FakeStore store;
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-3"});
  Verifier verifier(&store, nodes.get(), Scripted, nullptr, TestOptions());
  assert_status_ok(verifier.RunBatch().status());
  expect_that(store.last_healthy == (StoragePairs{{"default", "gitaly-1"}, {"default", "gitaly-3"}}),
              "the healthy storages only");
  SetHealthy(*nodes, {});
  store.lease_times.clear();
  auto batch = verifier.RunBatch();
  expect_that(batch.ok() && batch->leased == 0 && store.lease_times.empty(), "no healthy storage: no lease");
}

void ChecksRunInParallelWithinTheLease(void**) {
  FakeStore store;
  std::vector<VerificationJob> batch;
  for (int i = 0; i < 25; ++i) batch.push_back(Job(100 + i, "gitaly-1"));
  batch.push_back(Job(3, "gitaly-2"));  // hangs until its deadline
  store.batches = {batch};
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2"});
  VerifierOptions options = TestOptions();
  options.lease = milliseconds(1500);
  std::atomic<int> in_flight{0}, most{0};
  std::mutex mu;
  milliseconds longest_timeout{0};
  ExistenceCheck check = [&](const VerificationJob& job, milliseconds timeout, const std::atomic<bool>*) {
    {
      std::lock_guard lock(mu);
      longest_timeout = std::max(longest_timeout, timeout);
    }
    if (job.repository_id == 3) {
      std::this_thread::sleep_for(timeout);
      return StatusOr<bool>(Status(StatusCode::kDeadlineExceeded, "deadline exceeded"));
    }
    int now = ++in_flight;
    int seen = most.load();
    while (now > seen && !most.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(milliseconds(200));
    --in_flight;
    return StatusOr<bool>(true);
  };
  Verifier verifier(&store, nodes.get(), check, nullptr, options);
  const auto started = Clock::now();
  auto done = verifier.RunBatch();
  const auto took = Clock::now() - started;
  expect_that(done.ok() && done->valid == 25 && done->errors == 1, "25 valid, the hung check an error");
  expect_that(most.load() > 1, "the checks ran in parallel, at most " + std::to_string(most.load()) + " at once");
  expect_that(longest_timeout <= milliseconds(1500) && longest_timeout > milliseconds(1000),
              "each check gets what is left of the lease");
  expect_that(took < milliseconds(3000), "the batch ends with its lease");
}

void FullBatchesComeBackToBack(void**) {
  FakeStore store;
  for (int b = 0; b < 3; ++b) {
    std::vector<VerificationJob> full;
    for (int i = 0; i < 25; ++i) full.push_back(Job(b * 100 + i + 10, "gitaly-1"));
    store.batches.push_back(full);
  }
  store.batches.push_back({Job(7, "gitaly-1")});
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1"});
  VerifierOptions options = TestOptions();
  options.poll = milliseconds(600);
  Verifier verifier(&store, nodes.get(), Scripted, nullptr, options);
  verifier.Start();
  bool five = PollUntil(
      [&] {
        std::lock_guard lock(store.mu);
        return store.lease_times.size() >= 5;
      },
      milliseconds(5000));
  verifier.Stop();
  expect_that(five, "batches kept coming");
  std::lock_guard lock(store.mu);
  const auto& t = store.lease_times;
  expect_that(t[3] - t[0] < milliseconds(500),
              "the three full batches and the next one back to back");
  expect_that(t[4] - t[3] >= milliseconds(550), "after a batch that was not full, the poll interval");
  expect_that(store.recorded.size() == 76, "every leased replica recorded");
}

void StaleLeasesAreReleasedWhileBatchesComeFull(void**) {
  CaptureLogs logs;
  FakeStore store;
  store.stale = 53;
  auto nodes = ThreeNodes();
  praefect::metrics::Metrics metrics({});
  Verifier verifier(&store, nodes.get(), Scripted, &metrics, TestOptions());
  auto released = verifier.ReleaseStaleLeases();
  assert_status_ok(released.status());
  expect_that(*released == 53 && store.releases == 3, "25 + 25 + 3, in three statements");
  expect_that(store.last_expired_for == milliseconds(30000), "stale: expired for a lease's length");
  auto lines = logs.sink->With("info: released stale verification leases");
  expect_that(lines.size() == 3 && Has(lines[2], R"(leases_released="{\"default\":{)") &&
                  Has(lines[2], R"(\"r1001.git\":[\"gitaly-2\"])"),
              "each batch logged with the replicas released");
  expect_that(Has(metrics.Render(), "gitaly_praefect_stale_verification_leases_released_total 53"),
              "the released leases counted");
}

void StartCreatesTheSeriesAndStopCancelsTheChecks(void**) {
  FakeStore store;
  store.batches = {{Job(1, "gitaly-1")}};
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1"});
  VerifierOptions options = TestOptions();
  options.poll = milliseconds(10);
  std::atomic<bool> started{false};
  ExistenceCheck check = [&](const VerificationJob&, milliseconds timeout, const std::atomic<bool>* abandon) {
    started = true;
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until && !abandon->load()) std::this_thread::sleep_for(milliseconds(5));
    return StatusOr<bool>(Status(StatusCode::kCancelled, "cancelled"));
  };
  praefect::metrics::Metrics metrics({});
  Verifier verifier(&store, nodes.get(), check, &metrics, options);
  verifier.Start();
  const std::string rendered = metrics.Render();
  expect_that(Has(rendered, "gitaly_praefect_verification_jobs_completed_total{result=\"invalid\",storage=\"gitaly-3\","
                            "virtual_storage=\"default\"} 0") &&
                  Has(rendered, "gitaly_praefect_verification_jobs_dequeued_total{storage=\"gitaly-2\","
                                "virtual_storage=\"default\"} 0") &&
                  Has(rendered, "gitaly_praefect_stale_verification_leases_released_total 0"),
              "every series at 0 from the start, got\n" + rendered);
  expect_that(PollUntil([&] { return started.load(); }, milliseconds(3000)), "a check started");
  const auto stopping = Clock::now();
  verifier.Stop();
  expect_that(Clock::now() - stopping < milliseconds(2000), "Stop does not wait for the lease");
  std::lock_guard lock(store.mu);
  expect_that(store.recorded.size() == 1 && !store.recorded[0].answered,
              "the cancelled check recorded as an error (the replica stays due)");
}

void TheNodeCheckNamesWhatFailed(void**) {
  auto nodes = ThreeNodes();
  ExistenceCheck check = praefect::reconcile::NodeExistenceCheck(nodes.get());
  auto unknown = check(Job(1, "gitaly-9"), milliseconds(1000), nullptr);
  expect_that(!unknown.ok() && Has(unknown.status().message(), "gitaly-9") &&
                  Has(unknown.status().message(), "not in this praefect's configuration"),
              "an unconfigured storage named, got " + unknown.status().ToString());
  const auto started = Clock::now();
  auto unreachable = check(Job(1, "gitaly-1"), milliseconds(500), nullptr);
  expect_that(!unreachable.ok() && Has(unreachable.status().message(), "RepositoryExists on") &&
                  Has(unreachable.status().message(), "gitaly-1"),
              "an unreachable node is an error naming it, got " + unreachable.status().ToString());
  expect_that(Clock::now() - started < milliseconds(3000), "within its timeout");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ABatchChecksRecordsLogsAndCounts),
      cmocka_unit_test(WithoutDeletionsTheLossIsOnlyReported),
      cmocka_unit_test(ResultsThatCouldNotBeRecordedAreNotCounted),
      cmocka_unit_test(OnlyLocallyHealthyStoragesAreVerified),
      cmocka_unit_test(ChecksRunInParallelWithinTheLease),
      cmocka_unit_test(FullBatchesComeBackToBack),
      cmocka_unit_test(StaleLeasesAreReleasedWhileBatchesComeFull),
      cmocka_unit_test(StartCreatesTheSeriesAndStopCancelsTheChecks),
      cmocka_unit_test(TheNodeCheckNamesWhatFailed),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
