// A replication job's life in the PostgreSQL store, one step at a time:
// jobs that die are deleted, delete_replica jobs never run out of attempts,
// the stale sweep releases a job under a new id (so the worker it was taken
// from cannot touch the retry), leftover rows of an earlier version are
// cleared, and a write on a replica that missed an earlier one queues a job.
#include <thread>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using std::chrono::milliseconds;

namespace {

using Db = praefect::testing::TestDb;

NewRepository Repo(int64_t id, const std::string& rel) {
  NewRepository r;
  r.repository_id = id;
  r.virtual_storage = "default";
  r.relative_path = rel;
  r.replica_path = DeriveReplicaPath(id);
  r.primary = "gitaly-1";
  r.outdated = {"gitaly-2", "gitaly-3"};
  r.correlation_id = "corr";
  return r;
}

std::string Count(Db& db, const std::string& where) {
  return db.Scalar("SELECT count(*) FROM replication_queue WHERE " + where);
}

// No job lock left and every replica lock free: nothing keeps the replica
// from its next job.
void ExpectUnlocked(Db& db) {
  expect_that(db.Scalar("SELECT count(*) FROM replication_queue_job_lock") == "0", "no job lock left");
  expect_that(db.Scalar("SELECT count(*) FROM replication_queue_lock WHERE acquired") == "0",
              "every replica lock free");
}

void DeadJobsAreDeletedAtOnce(void**) {
  Db db;
  auto store = db.Store();
  assert_status_ok(store->CreateRepository(Repo(1, "dead.git")));
  auto jobs = store->Dequeue("default", "gitaly-2", 10);
  assert_int_equal(jobs->size(), 1);
  assert_int_equal(store->Acknowledge(JobState::kDead, {jobs->front().id})->size(), 1);
  expect_that(Count(db, "job->>'target_node_storage' = 'gitaly-2'") == "0", "the dead job's row is gone");
  assert_int_equal(*store->CountJobs(JobState::kDead), 0);
  ExpectUnlocked(db);
}

// Failed on its last attempt: deleted like a dead job, not kept as 'dead'.
void FailedOnTheLastAttemptIsDeleted(void**) {
  Db db;
  auto store = db.Store();
  assert_status_ok(store->CreateRepository(Repo(1, "last.git")));
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto jobs = store->Dequeue("default", "gitaly-3", 10);
    assert_int_equal(jobs->size(), 1);
    assert_int_equal(jobs->front().attempts_left, 2 - attempt);
    assert_int_equal(store->Acknowledge(JobState::kFailed, {jobs->front().id})->size(), 1);
  }
  expect_that(Count(db, "job->>'target_node_storage' = 'gitaly-3'") == "0", "no row left after the last attempt");
  ExpectUnlocked(db);
}

void DeleteReplicaJobsNeverRunOutOfAttempts(void**) {
  Db db;
  auto store = db.Store();
  assert_status_ok(store->CreateRepository(Repo(1, "del.git")));
  assert_status_ok(store->SetGeneration(1, "gitaly-2", 0));
  assert_status_ok(store->DeleteRepository("default", "del.git", "gitaly-1", "corr").status());
  for (int attempt = 0; attempt < 6; ++attempt) {
    auto jobs = store->Dequeue("default", "gitaly-2", 10);
    assert_int_equal(jobs->size(), 1);
    assert_true(jobs->front().job.change == ChangeType::kDeleteReplica);
    assert_int_equal(jobs->front().attempts_left, 3);
    assert_int_equal(store->Acknowledge(JobState::kFailed, {jobs->front().id})->size(), 1);
  }
  expect_that(Count(db, "state = 'ready' AND job->>'change' = 'delete_replica'") == "1", "still queued");
}

// The race the new ids close: worker A takes a job and stops heartbeating
// (but runs on); the sweep releases the job; a write finds the retry ready
// and counts on it; worker B takes the retry and fails. A's late "completed"
// must not delete B's job (which read the write's generation), or B's
// "failed" matches nothing and the replica is left behind with no job.
void LateAcknowledgementLeavesTheRetryAlone(void**) {
  Db db;
  auto a = db.Store(), b = db.Store();
  assert_status_ok(a->CreateRepository(Repo(1, "late.git")));
  auto taken_by_a = a->Dequeue("default", "gitaly-2", 10);
  assert_int_equal(taken_by_a->size(), 1);
  std::this_thread::sleep_for(milliseconds(20));
  assert_int_equal(*b->ReleaseStale(std::chrono::seconds(0)), 1);
  ExpectUnlocked(db);
  assert_status_ok(b->RecordWrite(Write{1, "gitaly-1", {}, {"gitaly-2", "gitaly-3"}, "w"}));
  expect_that(Count(db, "job->>'target_node_storage' = 'gitaly-2'") == "1", "the retry covers the write");
  auto taken_by_b = b->Dequeue("default", "gitaly-2", 10);
  assert_int_equal(taken_by_b->size(), 1);
  expect_that(taken_by_b->front().id != taken_by_a->front().id, "the retry has a new id");
  assert_int_equal(taken_by_b->front().attempts_left, 1);  // the released run spent one
  assert_int_equal(a->Acknowledge(JobState::kCompleted, {taken_by_a->front().id})->size(), 0);
  assert_status_ok(a->Heartbeat({taken_by_a->front().id}));
  expect_that(db.Scalar("SELECT count(*) FROM replication_queue_lock WHERE acquired") == "1",
              "B keeps its replica lock");
  assert_int_equal(b->Acknowledge(JobState::kFailed, {taken_by_b->front().id})->size(), 1);
  expect_that(Count(db, "state = 'ready' AND job->>'target_node_storage' = 'gitaly-2'") == "1",
              "gitaly-2, a generation behind, still has its job");
  ExpectUnlocked(db);
}

// A stale job with no attempt left dies (deleted); one with attempts is
// ready again; their locks are freed either way. A fresh one is untouched.
void StaleSweepRetriesOrDeletes(void**) {
  Db db;
  auto store = db.Store();
  assert_status_ok(store->CreateRepository(Repo(1, "s1.git")));
  assert_status_ok(store->CreateRepository(Repo(2, "s2.git")));
  assert_string_equal(db.Scalar("UPDATE replication_queue SET attempt = 1 WHERE job->>'relative_path' = 's1.git' "
                                "AND job->>'target_node_storage' = 'gitaly-2' RETURNING 'ok'").c_str(), "ok");
  auto jobs = store->Dequeue("default", "gitaly-2", 10);
  assert_int_equal(jobs->size(), 2);
  auto fresh = store->Dequeue("default", "gitaly-3", 10);
  assert_int_equal(fresh->size(), 2);
  std::this_thread::sleep_for(milliseconds(1100));
  std::vector<int64_t> fresh_ids = {(*fresh)[0].id, (*fresh)[1].id};
  assert_status_ok(store->Heartbeat(fresh_ids));
  assert_int_equal(*store->ReleaseStale(std::chrono::seconds(1)), 2);
  expect_that(Count(db, "job->>'relative_path' = 's1.git' AND job->>'target_node_storage' = 'gitaly-2'") == "0",
              "the job on its last attempt died and was deleted");
  expect_that(Count(db, "state = 'ready' AND job->>'relative_path' = 's2.git' AND "
                        "job->>'target_node_storage' = 'gitaly-2' AND attempt = 2") == "1",
              "the other is ready again with its attempts");
  expect_that(Count(db, "state = 'in_progress'") == "2", "the heartbeated jobs still run");
  assert_int_equal(store->Acknowledge(JobState::kCompleted, fresh_ids)->size(), 2);
  ExpectUnlocked(db);
  assert_int_equal(store->Dequeue("default", "gitaly-2", 10)->size(), 1);
}

// A database Praefect ran on keeps finished rows and retries 'failed' ones;
// the sweep deletes the first and makes the second ready.
void LeftoverRowsAreCleared(void**) {
  Db db;
  assert_true(praefect::testing::PgServer::Shared().Psql(db.name, R"(
INSERT INTO replication_queue (state, lock_id, job) VALUES
  ('completed', 'default|gitaly-2|x.git', '{"change": "update", "virtual_storage": "default", "target_node_storage": "gitaly-2"}'),
  ('dead', 'default|gitaly-2|x.git', '{"change": "update", "virtual_storage": "default", "target_node_storage": "gitaly-2"}'),
  ('cancelled', 'default|gitaly-2|x.git', '{"change": "update", "virtual_storage": "default", "target_node_storage": "gitaly-2"}'),
  ('failed', 'default|gitaly-3|x.git', '{"change": "update", "virtual_storage": "default", "target_node_storage": "gitaly-3"}');)"));
  auto store = db.Store();
  assert_int_equal(*store->ReleaseStale(std::chrono::seconds(60)), 0);
  expect_that(Count(db, "state IN ('completed', 'dead', 'cancelled')") == "0", "finished rows deleted");
  expect_that(Count(db, "state = 'ready' AND job->>'target_node_storage' = 'gitaly-3'") == "1",
              "the failed one is ready for a worker");
}

// A replica that took a write while it was a generation behind is not
// bumped; it must get a job, or nothing brings it up.
void OutdatedVoterGetsAJob(void**) {
  Db db;
  auto store = db.Store();
  assert_status_ok(store->CreateRepository(Repo(1, "voter.git")));
  assert_status_ok(store->SetGeneration(1, "gitaly-2", 0));
  assert_status_ok(store->SetGeneration(1, "gitaly-3", 0));
  auto jobs = store->Dequeue("default", "gitaly-2", 10);
  assert_int_equal(jobs->size(), 1);
  assert_status_ok(store->Acknowledge(JobState::kCompleted, {jobs->front().id}).status());
  jobs = store->Dequeue("default", "gitaly-3", 10);
  assert_status_ok(store->Acknowledge(JobState::kCompleted, {jobs->front().id}).status());
  // gitaly-3 misses a write; then a write that (by a stale view) counts it
  // among the replicas that took it.
  assert_status_ok(store->RecordWrite(Write{1, "gitaly-1", {"gitaly-2"}, {"gitaly-3"}, "w1"}));
  jobs = store->Dequeue("default", "gitaly-3", 10);  // its job runs, at generation 1
  assert_int_equal(jobs->size(), 1);
  assert_status_ok(store->RecordWrite(Write{1, "gitaly-1", {"gitaly-2", "gitaly-3"}, {}, "w2"}));
  assert_status_ok(store->SetGeneration(1, "gitaly-3", 1));
  assert_status_ok(store->Acknowledge(JobState::kCompleted, {jobs->front().id}).status());
  auto meta = store->GetRepository("default", "voter.git");
  assert_int_equal((*meta)->generation, 2);
  expect_that(Count(db, "state = 'ready' AND job->>'target_node_storage' = 'gitaly-3'") == "1",
              "gitaly-3, at generation 1 of 2, has a job");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(DeadJobsAreDeletedAtOnce),
      cmocka_unit_test(FailedOnTheLastAttemptIsDeleted),
      cmocka_unit_test(DeleteReplicaJobsNeverRunOutOfAttempts),
      cmocka_unit_test(LateAcknowledgementLeavesTheRetryAlone),
      cmocka_unit_test(StaleSweepRetriesOrDeletes),
      cmocka_unit_test(LeftoverRowsAreCleared),
      cmocka_unit_test(OutdatedVoterGetsAJob),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
