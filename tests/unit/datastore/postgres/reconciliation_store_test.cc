// PostgresDatastore as the ReconciliationStore, against a real PostgreSQL:
// which jobs a reconciliation schedules (background-work.md §4), that it
// never duplicates an active one (also with three schedulers at once), the
// advisory lock, and the round lease several praefects share.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::testing::TestDb;
using std::chrono::milliseconds;

namespace {

#define expect_text(got, want)                                             \
  do {                                                                     \
    const std::string got_ = (got), want_ = (want);                        \
    expect_that(got_ == want_, "\"" + want_ + "\", got \"" + got_ + "\""); \
  } while (0)

const StoragePairs kAllHealthy = {{"default", "gitaly-1"}, {"default", "gitaly-2"}, {"default", "gitaly-3"}};

// A repository created on gitaly-1 (generation 0) with `others` recorded at
// the given generations; then gitaly-1 takes `writes` writes.
int64_t Repo(PostgresDatastore& store, const std::string& rel, const std::vector<Replica>& others = {},
             int writes = 0) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  assert_status_ok(store.CreateRepository(
      NewRepository{*id, "default", rel, DeriveReplicaPath(*id), "gitaly-1", {}, "", {}}));
  for (const auto& r : others) assert_status_ok(store.SetGeneration(*id, r.storage, 0));
  for (int i = 0; i < writes; ++i) assert_status_ok(store.RecordWrite(Write{*id, "gitaly-1", {}, {}, ""}));
  for (const auto& r : others) {
    if (r.generation > 0) assert_status_ok(store.SetGeneration(*id, r.storage, r.generation));
  }
  return *id;
}

// "<change>:<relative_path>:<source>><target>" of every scheduled job, sorted.
std::string Describe(const std::vector<ScheduledJob>& jobs) {
  std::vector<std::string> parts;
  for (const auto& j : jobs)
    parts.push_back(std::string(ChangeTypeName(j.change)) + ":" + j.relative_path + ":" + j.source_storage + ">" +
                    j.target_storage);
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

std::vector<ScheduledJob> Schedule(PostgresDatastore& store, const StoragePairs& healthy = kAllHealthy,
                                   int64_t first = 0, int64_t last = 1000000) {
  auto jobs = store.ScheduleReconciliation(healthy, first, last);
  assert_status_ok(jobs.status());
  return *jobs;
}

void OutdatedAndMissingReplicasGetOneUpdateEach(void**) {
  TestDb db;
  auto store = db.Store();
  // a: gitaly-2 one write behind, gitaly-3 missing. b: all up to date.
  Repo(*store, "a.git", {{"gitaly-2", 0}}, 1);
  Repo(*store, "b.git", {{"gitaly-2", 1}, {"gitaly-3", 1}}, 1);
  auto jobs = Schedule(*store);
  expect_text(Describe(jobs), "update:a.git:gitaly-1>gitaly-2,update:a.git:gitaly-1>gitaly-3");
  for (const auto& j : jobs) expect_that(!j.correlation_id.empty(), "a correlation id on every job");
  // The jobs are in the queue as the replicator reads them, and wake it.
  expect_text(db.Scalar("SELECT string_agg(lock_id || ' ' || state || ' ' || (job->>'replica_path' IS NOT NULL)::text,"
                        " ',' ORDER BY lock_id) FROM replication_queue"),
              "default|gitaly-2|a.git ready true,default|gitaly-3|a.git ready true");
  expect_text(db.Scalar("SELECT count(*) FROM replication_queue_lock"), "2");
  auto taken = store->Dequeue("default", "gitaly-2", 10);
  assert_status_ok(taken.status());
  expect_that(taken->size() == 1 && (*taken)[0].job.source_node_storage == "gitaly-1", "gitaly-2's job dequeued");
  // A second pass: both jobs are active (one ready, one in progress).
  expect_text(Describe(Schedule(*store)), "");
}

void DeadOrCompletedJobsDoNotCount(void**) {
  TestDb db;
  auto store = db.Store();
  Repo(*store, "a.git", {{"gitaly-2", 0}, {"gitaly-3", 1}}, 1);
  auto first = Schedule(*store);
  expect_that(first.size() == 1 && first[0].target_storage == "gitaly-2", "gitaly-2's job, got " + Describe(first));
  // The job died (a Praefect-era row, or one the replicator left dead).
  db.Scalar("UPDATE replication_queue SET state = 'dead'");
  auto again = Schedule(*store);
  expect_that(again.size() == 1 && again[0].target_storage == "gitaly-2" &&
                  (again[0].source_storage == "gitaly-1" || again[0].source_storage == "gitaly-3"),
              "a dead job is scheduled again from an up-to-date replica, got " + Describe(again));
}

void OnlyHealthyStoragesAreSourcesAndTargets(void**) {
  TestDb db;
  auto store = db.Store();
  // a: gitaly-1 and gitaly-2 up to date, gitaly-3 behind.
  Repo(*store, "a.git", {{"gitaly-2", 1}, {"gitaly-3", 0}}, 1);
  // gitaly-1 down: the job comes from gitaly-2.
  expect_text(Describe(Schedule(*store, {{"default", "gitaly-2"}, {"default", "gitaly-3"}})),
              "update:a.git:gitaly-2>gitaly-3");
  db.Scalar("DELETE FROM replication_queue");
  // gitaly-3 down: nothing to do for it.
  expect_text(Describe(Schedule(*store, {{"default", "gitaly-1"}, {"default", "gitaly-2"}})), "");
  // b: only gitaly-1 (down) up to date: no source, no job.
  Repo(*store, "b.git", {{"gitaly-2", 0}, {"gitaly-3", 0}}, 1);
  expect_text(Describe(Schedule(*store, {{"default", "gitaly-2"}, {"default", "gitaly-3"}})),
              "update:a.git:gitaly-2>gitaly-3");
  // Another virtual storage's healthy storages do not count.
  db.Scalar("DELETE FROM replication_queue");
  expect_text(Describe(Schedule(*store, {{"other", "gitaly-1"}, {"other", "gitaly-3"}})), "");
}

void AssignmentsDecideTargetsAndDeletions(void**) {
  TestDb db;
  auto store = db.Store();
  const std::vector<std::string> configured = {"gitaly-1", "gitaly-2", "gitaly-3"};
  // a: assigned gitaly-1 and gitaly-2; gitaly-3 holds an unassigned copy.
  int64_t a = Repo(*store, "a.git", {{"gitaly-2", 1}, {"gitaly-3", 1}}, 1);
  db.Scalar("INSERT INTO repository_assignments SELECT repository_id, virtual_storage, relative_path, s "
            "FROM repositories, unnest(ARRAY['gitaly-1', 'gitaly-2']) AS s WHERE repository_id = " +
            std::to_string(a));
  expect_text(Describe(Schedule(*store)), "delete_replica:a.git:>gitaly-3");
  expect_text(db.Scalar("SELECT job->>'source_node_storage' IS NULL FROM replication_queue"),
              "t");
  // One deletion pending: nothing more.
  expect_text(Describe(Schedule(*store)), "");
  db.Scalar("DELETE FROM replication_queue");
  // gitaly-2 (assigned) behind gitaly-3: gitaly-3 is not deleted before
  // gitaly-2 is as new; gitaly-2 gets its update (the source may be
  // gitaly-3, which is up to date).
  assert_status_ok(store->RecordWrite(Write{a, "gitaly-1", {"gitaly-3"}, {}, ""}));
  auto jobs = Schedule(*store);
  expect_that(jobs.size() == 1 && jobs[0].change == ChangeType::kUpdate && jobs[0].target_storage == "gitaly-2",
              "only gitaly-2's update, got " + Describe(jobs));
  db.Scalar("DELETE FROM replication_queue");
  // A missing assigned replica blocks deletions too.
  int64_t b = Repo(*store, "b.git", {{"gitaly-3", 0}}, 0);
  db.Scalar("INSERT INTO repository_assignments SELECT repository_id, virtual_storage, relative_path, s "
            "FROM repositories, unnest(ARRAY['gitaly-1', 'gitaly-2']) AS s WHERE repository_id = " +
            std::to_string(b));
  jobs = Schedule(*store);
  std::string described = Describe(jobs);
  expect_that(described.find("delete_replica:b.git") == std::string::npos &&
                  (described.find("update:b.git:gitaly-1>gitaly-2") != std::string::npos ||
                   described.find("update:b.git:gitaly-3>gitaly-2") != std::string::npos),
              "b.git's gitaly-2 is made first, got " + described);
}

void SourceBeingDeletedIsNotUsed(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git", {{"gitaly-2", 1}, {"gitaly-3", 0}}, 1);
  db.Scalar("INSERT INTO replication_queue (lock_id, job) VALUES ('default|gitaly-1|a.git', jsonb_build_object("
            "'change', 'delete_replica', 'repository_id', " + std::to_string(a) +
            ", 'virtual_storage', 'default', 'relative_path', 'a.git', 'target_node_storage', 'gitaly-1'))");
  for (int i = 0; i < 5; ++i) {
    auto jobs = Schedule(*store);
    expect_text(Describe(jobs), "update:a.git:gitaly-2>gitaly-3");
    db.Scalar("DELETE FROM replication_queue WHERE job->>'change' = 'update'");
  }
}

void RangesBoundTheStatement(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git", {{"gitaly-2", 0}}, 1);
  int64_t b = Repo(*store, "b.git", {{"gitaly-2", 0}}, 1);
  expect_text(Describe(Schedule(*store, kAllHealthy, b, b)),
              "update:b.git:gitaly-1>gitaly-2,update:b.git:gitaly-1>gitaly-3");
  expect_text(Describe(Schedule(*store, kAllHealthy, a, a)),
              "update:a.git:gitaly-1>gitaly-2,update:a.git:gitaly-1>gitaly-3");
  auto range = store->RepositoryIdRange();
  assert_status_ok(range.status());
  expect_that(range->has_value() && (*range)->first == a && (*range)->second == b, "the ids of a.git and b.git");
}

void AdvisoryLockHeldElsewhereAborts(void**) {
  TestDb db;
  auto store = db.Store();
  Repo(*store, "a.git", {{"gitaly-2", 0}}, 1);
  // Praefect v16 (or another praefect) in its scheduling transaction.
  assert_status_ok(db.sql->ExecScript("BEGIN; SELECT pg_advisory_xact_lock(1)", praefect::testing::In(milliseconds(5000))));
  auto blocked = store->ScheduleReconciliation(kAllHealthy, 0, 1000000);
  expect_that(blocked.status().code() == praefect::StatusCode::kAborted,
              "ABORTED while the lock is held, got " + blocked.status().ToString());
  assert_status_ok(db.sql->ExecScript("COMMIT", praefect::testing::In(milliseconds(5000))));
  expect_text(db.Scalar("SELECT count(*) FROM replication_queue"), "0");
  expect_that(!Schedule(*store).empty(), "scheduled once the lock is free");
}

void ThreeSchedulersAtOnceNeverDuplicate(void**) {
  TestDb db;
  std::vector<std::unique_ptr<PostgresDatastore>> stores;
  for (int i = 0; i < 3; ++i) stores.push_back(db.Store());
  for (int i = 0; i < 200; ++i) Repo(*stores[0], "r" + std::to_string(i) + ".git", {{"gitaly-2", 0}}, 1);
  std::atomic<int> scheduled{0}, errors{0};
  std::mutex error_mu;
  std::string error_text;
  for (int round = 0; round < 5; ++round) {
    db.Scalar("DELETE FROM replication_queue");
    std::vector<std::thread> threads;
    for (auto& s : stores) {
      threads.emplace_back([&, store = s.get()] {
        for (int attempt = 0; attempt < 200; ++attempt) {
          auto jobs = store->ScheduleReconciliation(kAllHealthy, 0, 1000000);
          if (jobs.ok()) {
            scheduled += static_cast<int>(jobs->size());
            return;
          }
          if (jobs.status().code() != praefect::StatusCode::kAborted) {
            std::lock_guard lock(error_mu);
            error_text += jobs.status().ToString() + "\n";
            ++errors;
            return;
          }
          std::this_thread::sleep_for(milliseconds(5));
        }
        std::lock_guard lock(error_mu);
        error_text += "the advisory lock stayed taken for 200 attempts\n";
        ++errors;
      });
    }
    for (auto& t : threads) t.join();
    expect_text(db.Scalar("SELECT count(*) FROM replication_queue"), "400");
    expect_text(db.Scalar("SELECT count(*) FROM (SELECT lock_id FROM replication_queue GROUP BY lock_id "
                          "HAVING count(*) > 1) d"),
                "0");
  }
  expect_that(errors.load() == 0, "no scheduler failed, got " + error_text);
  expect_that(scheduled.load() == 5 * 400, "every job reported once, got " + std::to_string(scheduled.load()));
}

void TheLeaseIsSharedByThePraefects(void**) {
  TestDb db;
  auto a = db.Store();
  auto b = db.Store();
  const milliseconds interval(60000), lease(30000);
  auto first = a->TryStartReconciliation("praefect-a", interval, std::nullopt, lease);
  assert_status_ok(first.status());
  expect_that(first->leader, "the first praefect leads the first round");
  auto second = b->TryStartReconciliation("praefect-b", interval, std::nullopt, lease);
  assert_status_ok(second.status());
  expect_that(!second->leader && second->holder == "praefect-a", "praefect-b sees praefect-a reconciling");
  assert_status_ok(a->RenewReconciliation("praefect-a", lease));
  expect_that(b->RenewReconciliation("praefect-b", lease).code() == praefect::StatusCode::kFailedPrecondition,
              "only the holder renews");
  assert_status_ok(a->EndReconciliation("praefect-a"));
  // Ended: free, but the round ran just now, so none is due.
  auto third = b->TryStartReconciliation("praefect-b", interval, std::nullopt, lease);
  expect_that(third.ok() && !third->leader && third->holder.empty() && third->last_started_ago.has_value() &&
                  *third->last_started_ago < interval,
              "no round due within the interval");
  // A node returned 10 s ago, after the last round started: due at once.
  db.Scalar("UPDATE reconciliation_lease SET started_at = now() - interval '20 seconds'");
  auto forced = b->TryStartReconciliation("praefect-b", interval, milliseconds(10000), lease);
  expect_that(forced.ok() && forced->leader, "a round is due after a node's return");
  assert_status_ok(b->EndReconciliation("praefect-b"));
  // A node returned 10 s ago, and a round started 5 s ago covered it.
  db.Scalar("UPDATE reconciliation_lease SET started_at = now() - interval '5 seconds'");
  auto covered = a->TryStartReconciliation("praefect-a", interval, milliseconds(10000), lease);
  expect_that(covered.ok() && !covered->leader, "a round after the return covers it");
  // A holder that died: its lease expires and another takes over.
  assert_status_ok(a->TryStartReconciliation("praefect-a", milliseconds(0), std::nullopt, lease).status());
  db.Scalar("UPDATE reconciliation_lease SET leased_until = now() - interval '1 second'");
  auto takeover = b->TryStartReconciliation("praefect-b", milliseconds(0), std::nullopt, lease);
  expect_that(takeover.ok() && takeover->leader, "an expired lease is taken over");
  expect_that(a->RenewReconciliation("praefect-a", lease).code() == praefect::StatusCode::kFailedPrecondition,
              "the old holder learns it lost the lease");
}

// What a maintenance pass waits for: an update counts as repaired once its
// replica reached the repository's generation, a delete_replica once the
// replica's record is gone; a deleted repository needs nothing.
void PendingRepairsAreThoseNotInEffectYet(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t behind = Repo(*store, "behind.git", {{"gitaly-2", 0}, {"gitaly-3", 0}}, 2);
  auto jobs = Schedule(*store);
  expect_text(Describe(jobs), "update:behind.git:gitaly-1>gitaly-2,update:behind.git:gitaly-1>gitaly-3");
  ScheduledJob deletion;
  deletion.change = ChangeType::kDeleteReplica;
  deletion.repository_id = behind;
  deletion.relative_path = "behind.git";
  deletion.target_storage = "gitaly-3";
  ScheduledJob gone;
  gone.repository_id = 999999;
  gone.target_storage = "gitaly-2";
  std::vector<ScheduledJob> asked = jobs;
  asked.push_back(deletion);
  asked.push_back(gone);
  auto pending = store->PendingRepairs(asked);
  assert_status_ok(pending.status());
  expect_that(pending->size() == 3, "both updates and the deletion pending, got " + std::to_string(pending->size()));
  expect_that((*pending)[0].job_active && (*pending)[1].job_active && (*pending)[2].job_active,
              "the updates' jobs active (gitaly-3's counts for the deletion on gitaly-3 too)");
  // gitaly-2 caught up; gitaly-3's job died (removed) while it is behind.
  assert_status_ok(store->SetGeneration(behind, "gitaly-2", 2));
  db.Scalar("DELETE FROM replication_queue WHERE job->>'target_node_storage' = 'gitaly-3'");
  pending = store->PendingRepairs(asked);
  assert_status_ok(pending.status());
  expect_that(pending->size() == 2 && (*pending)[0].job.target_storage == "gitaly-3" &&
                  !(*pending)[0].job_active && (*pending)[1].job.change == ChangeType::kDeleteReplica,
              "gitaly-3's update (no job left) and the deletion pending");
  db.Scalar("DELETE FROM storage_repositories WHERE storage = 'gitaly-3'");
  pending = store->PendingRepairs({deletion});
  assert_status_ok(pending.status());
  expect_that(pending->empty(), "the deletion in effect once the record is gone");
  pending = store->PendingRepairs({});
  assert_status_ok(pending.status());
  expect_that(pending->empty(), "nothing asked, nothing pending");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(OutdatedAndMissingReplicasGetOneUpdateEach),
      cmocka_unit_test(DeadOrCompletedJobsDoNotCount),
      cmocka_unit_test(OnlyHealthyStoragesAreSourcesAndTargets),
      cmocka_unit_test(AssignmentsDecideTargetsAndDeletions),
      cmocka_unit_test(SourceBeingDeletedIsNotUsed),
      cmocka_unit_test(RangesBoundTheStatement),
      cmocka_unit_test(AdvisoryLockHeldElsewhereAborts),
      cmocka_unit_test(ThreeSchedulersAtOnceNeverDuplicate),
      cmocka_unit_test(TheLeaseIsSharedByThePraefects),
      cmocka_unit_test(PendingRepairsAreThoseNotInEffectYet),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
