// The Reconciler's rounds over a scripted ReconciliationStore: ranges,
// lease renewal and loss, the advisory lock's retries, the healthy storages
// it passes, and the round it runs at once when a node returns. The SQL is
// tested against PostgreSQL in reconciliation_store_test; the whole loop
// end to end in tests/e2e/reconciliation_test.py.
#include "reconcile/reconciler.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "metrics/metrics.h"
#include "nodes/three_nodes.h"
#include "test_support.h"

namespace {

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;
using praefect::datastore::ScheduledJob;
using praefect::datastore::StoragePairs;
using praefect::nodes::NodeSet;
using praefect::nodes::testing::SetHealthy;
using praefect::nodes::testing::ThreeNodes;
using praefect::reconcile::Options;
using praefect::reconcile::Reconciler;
using std::chrono::milliseconds;

// A store that answers as scripted and records what it was asked.
class FakeStore : public praefect::datastore::ReconciliationStore {
 public:
  StatusOr<praefect::datastore::RoundLease> TryStartReconciliation(std::string_view holder, milliseconds interval,
                                                                   std::optional<milliseconds> returned_ago,
                                                                   milliseconds) override {
    std::lock_guard lock(mu);
    ++starts;
    last_interval = interval;
    last_returned_ago = returned_ago;
    praefect::datastore::RoundLease lease;
    lease.leader = leader;
    if (!leader) lease.holder = "someone-else";
    if (leader) holder_name = std::string(holder);
    return lease;
  }
  Status RenewReconciliation(std::string_view, milliseconds) override {
    std::lock_guard lock(mu);
    ++renewals;
    if (lose_lease_after >= 0 && renewals > lose_lease_after)
      return Status(StatusCode::kFailedPrecondition, "lease lost");
    return Status::Ok();
  }
  Status EndReconciliation(std::string_view) override {
    std::lock_guard lock(mu);
    ++ends;
    return Status::Ok();
  }
  StatusOr<std::optional<std::pair<int64_t, int64_t>>> RepositoryIdRange() override {
    return std::optional<std::pair<int64_t, int64_t>>(std::make_pair(first_id, last_id));
  }
  StatusOr<std::vector<ScheduledJob>> ScheduleReconciliation(const StoragePairs& healthy, int64_t first,
                                                             int64_t last) override {
    std::lock_guard lock(mu);
    if (aborts_left > 0) {
      --aborts_left;
      return Status(StatusCode::kAborted, "advisory lock held");
    }
    ranges.emplace_back(first, last);
    last_healthy = healthy;
    ScheduledJob job;
    job.repository_id = first;
    job.virtual_storage = "default";
    job.relative_path = "r" + std::to_string(first) + ".git";
    job.source_storage = "gitaly-1";
    job.target_storage = "gitaly-2";
    job.correlation_id = "c";
    return std::vector<ScheduledJob>{job};
  }
  StatusOr<std::vector<praefect::datastore::PendingRepair>> PendingRepairs(const std::vector<ScheduledJob>&) override {
    return std::vector<praefect::datastore::PendingRepair>{};
  }
  StatusOr<int64_t> ActiveReplicationJobs() override { return int64_t{0}; }

  std::mutex mu;
  bool leader = true;
  int aborts_left = 0;
  int lose_lease_after = -1;
  int64_t first_id = 1, last_id = 25;
  int starts = 0, renewals = 0, ends = 0;
  milliseconds last_interval{-1};
  std::optional<milliseconds> last_returned_ago;
  std::string holder_name;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  StoragePairs last_healthy;
};

Options TestOptions() {
  Options o;
  o.praefect_name = "praefect-a";
  o.interval = std::chrono::hours(1);
  o.range = 10;
  o.health_poll = milliseconds(20);
  return o;
}

void ARoundCoversEveryRangeUnderTheLease(void**) {
  FakeStore store;
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  praefect::metrics::Metrics metrics({});
  Reconciler reconciler(&store, nodes.get(), &metrics, TestOptions());
  auto round = reconciler.RunRound(true);
  assert_status_ok(round.status());
  expect_that(round->ran && round->ranges == 3 && round->jobs.size() == 3, "three ranges, one job each");
  expect_that(store.ranges == (std::vector<std::pair<int64_t, int64_t>>{{1, 10}, {11, 20}, {21, 25}}),
              "ranges of 10 ids from the first to the last");
  expect_that(store.renewals == 2 && store.ends == 1, "renewed between ranges, ended once");
  expect_that(store.last_interval == milliseconds(0), "a forced round is always due");
  expect_that(store.holder_name == "praefect-a", "the lease is held in this praefect's name");
  expect_that(store.last_healthy.size() == 3, "every healthy storage passed");
  const std::string rendered = metrics.Render();
  expect_that(rendered.find("gitaly_praefect_reconciliation_scheduling_seconds_count 1") != std::string::npos,
              "the round observed, got\n" + rendered);
  expect_that(rendered.find("gitaly_praefect_reconciliation_jobs_total{change_type=\"update\",virtual_storage="
                            "\"default\"} 3") != std::string::npos,
              "the jobs counted");
}

void TooFewHealthyStoragesSkipTheVirtualStorage(void**) {
  FakeStore store;
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1"});
  Reconciler reconciler(&store, nodes.get(), nullptr, TestOptions());
  auto round = reconciler.RunRound(true);
  assert_status_ok(round.status());
  expect_that(!round->ran && store.starts == 0, "no lease taken, nothing scheduled");
  SetHealthy(*nodes, {"gitaly-1", "gitaly-3"});
  round = reconciler.RunRound(true);
  expect_that(round.ok() && round->ran, "two healthy storages are enough");
  expect_that(store.last_healthy == (StoragePairs{{"default", "gitaly-1"}, {"default", "gitaly-3"}}),
              "only the healthy storages are passed");
}

void AnotherHolderMeansNoRound(void**) {
  FakeStore store;
  store.leader = false;
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  Reconciler reconciler(&store, nodes.get(), nullptr, TestOptions());
  auto round = reconciler.RunRound(false);
  assert_status_ok(round.status());
  expect_that(!round->ran && round->skipped.find("someone-else") != std::string::npos && store.ranges.empty(),
              "skipped, naming the holder: " + round->skipped);
  expect_that(store.last_interval == std::chrono::hours(1), "a regular round is due only after the interval");
}

void TheAdvisoryLockIsRetriedAndALostLeaseStopsTheRound(void**) {
  FakeStore store;
  store.aborts_left = 3;
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  Reconciler reconciler(&store, nodes.get(), nullptr, TestOptions());
  auto round = reconciler.RunRound(true);
  expect_that(round.ok() && round->ranges == 3, "three ABORTED answers are retried");
  store.ranges.clear();
  store.renewals = 0;
  store.lose_lease_after = 0;
  round = reconciler.RunRound(true);
  expect_that(round.status().code() == StatusCode::kFailedPrecondition, "the lost lease is the round's error");
  expect_that(store.ranges.size() == 1, "no range after the lease was lost");
}

void ANodeReturningStartsARoundAtOnce(void**) {
  FakeStore store;
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2"});
  Reconciler reconciler(&store, nodes.get(), nullptr, TestOptions());
  reconciler.Start();
  std::this_thread::sleep_for(milliseconds(200));
  {
    std::lock_guard lock(store.mu);
    expect_that(store.starts == 0, "no round before the interval");
  }
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  bool ran = false;
  for (int i = 0; i < 100 && !ran; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    std::lock_guard lock(store.mu);
    ran = !store.ranges.empty();
  }
  reconciler.Stop();
  expect_that(ran, "a round within 2 s of the node's return");
  std::lock_guard lock(store.mu);
  expect_that(store.last_returned_ago.has_value() && *store.last_returned_ago < milliseconds(2000),
              "the round says when the node returned");
  expect_that(store.last_healthy.size() == 3, "the returned node is among the healthy storages");
}

// The verifier's request (records of missing replicas removed): a round
// within a health poll, forced past the interval, once.
void ARequestedRoundRunsAtOnceAndOnce(void**) {
  FakeStore store;
  auto nodes = ThreeNodes();
  SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
  Reconciler reconciler(&store, nodes.get(), nullptr, TestOptions());
  reconciler.Start();
  reconciler.RequestRound();
  bool ran = false;
  for (int i = 0; i < 100 && !ran; ++i) {
    std::this_thread::sleep_for(milliseconds(20));
    std::lock_guard lock(store.mu);
    ran = !store.ranges.empty();
  }
  std::this_thread::sleep_for(milliseconds(200));
  reconciler.Stop();
  expect_that(ran, "a round within 2 s of the request");
  std::lock_guard lock(store.mu);
  expect_that(store.last_interval == milliseconds(0), "forced past the interval");
  expect_that(store.starts == 1, "one round for one request, got " + std::to_string(store.starts));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ARoundCoversEveryRangeUnderTheLease),
      cmocka_unit_test(TooFewHealthyStoragesSkipTheVirtualStorage),
      cmocka_unit_test(AnotherHolderMeansNoRound),
      cmocka_unit_test(TheAdvisoryLockIsRetriedAndALostLeaseStopsTheRound),
      cmocka_unit_test(ANodeReturningStartsARoundAtOnce),
      cmocka_unit_test(ARequestedRoundRunsAtOnceAndOnce),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
