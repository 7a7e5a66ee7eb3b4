// The in-memory Datastore: generations, jobs, collapsing, locks, deletion.
#include "datastore/memory_datastore.h"

#include "test_support.h"

namespace {

using namespace praefect::datastore;  // NOLINT: test file
using praefect::StatusCode;

void ReplicaPathsArePraefects(void**) {
  // Praefect documents @cluster/repositories/6b/86/1 for repository id 1
  // (sha256("1") = 6b86b273...).
  assert_string_equal(DeriveReplicaPath(1).c_str(), "@cluster/repositories/6b/86/1");
  assert_string_equal(DeriveReplicaPath(2).c_str(), "@cluster/repositories/d4/73/2");
}

NewRepository Repo(int64_t id, const std::string& rel) {
  NewRepository r;
  r.repository_id = id;
  r.virtual_storage = "default";
  r.relative_path = rel;
  r.replica_path = DeriveReplicaPath(id);
  r.primary = "gitaly-1";
  r.outdated = {"gitaly-2", "gitaly-3"};
  return r;
}

void CreateWriteReplicate(void**) {
  MemoryDatastore store;
  std::vector<std::string> notified;
  store.SetEnqueueListener([&](const std::string& vs, const std::string& target) { notified.push_back(vs + "/" + target); });
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  assert_status_ok(store.CreateRepository(Repo(*id, "a.git")));
  assert_int_equal(static_cast<int>(store.CreateRepository(Repo(*id + 100, "a.git")).code()),
                   static_cast<int>(StatusCode::kAlreadyExists));
  expect_that((notified == std::vector<std::string>{"default/gitaly-2", "default/gitaly-3"}), "listener per target");

  auto meta = store.GetRepository("default", "a.git");
  assert_status_ok(meta.status());
  assert_true(meta->has_value());
  assert_int_equal((*meta)->generation, 0);
  expect_that((*meta)->UpToDate() == std::vector<std::string>{"gitaly-1"}, "only the primary holds it");

  // Two writes before replication: the jobs collapse into one per target.
  for (int i = 0; i < 2; ++i) {
    Write w{*id, "gitaly-1", {}, {"gitaly-2", "gitaly-3"}, "corr"};
    assert_status_ok(store.RecordWrite(w));
  }
  meta = store.GetRepository("default", "a.git");
  assert_int_equal((*meta)->generation, 2);
  assert_int_equal(*store.CountJobs(JobState::kReady), 2);

  // One job per replica at a time.
  auto jobs = store.Dequeue("default", "gitaly-2", 10);
  assert_status_ok(jobs.status());
  assert_int_equal(jobs->size(), 1);
  assert_string_equal(jobs->front().job.source_node_storage.c_str(), "gitaly-1");
  assert_string_equal(jobs->front().job.replica_path.c_str(), DeriveReplicaPath(*id).c_str());
  // A write while it runs enqueues a new ready job that waits for the lock.
  assert_status_ok(store.RecordWrite(Write{*id, "gitaly-1", {}, {"gitaly-2"}, ""}));
  assert_int_equal(store.Dequeue("default", "gitaly-2", 10)->size(), 0);
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 2));
  assert_int_equal(store.Acknowledge(JobState::kCompleted, {jobs->front().id})->size(), 1);
  jobs = store.Dequeue("default", "gitaly-2", 10);
  assert_int_equal(jobs->size(), 1);
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 3));
  assert_status_ok(store.Acknowledge(JobState::kCompleted, {jobs->front().id}).status());
  meta = store.GetRepository("default", "a.git");
  auto up = (*meta)->UpToDate();
  expect_that((up == std::vector<std::string>{"gitaly-1", "gitaly-2"}), "gitaly-2 caught up");
}

void FailedJobsRetryThenDie(void**) {
  MemoryDatastore store;
  assert_status_ok(store.CreateRepository(Repo(1, "b.git")));
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto jobs = store.Dequeue("default", "gitaly-3", 10);
    assert_int_equal(jobs->size(), 1);
    assert_status_ok(store.Acknowledge(JobState::kFailed, {jobs->front().id}).status());
  }
  assert_int_equal(store.Dequeue("default", "gitaly-3", 10)->size(), 0);
  assert_int_equal(*store.CountJobs(JobState::kDead), 1);
  assert_int_equal(static_cast<int>(store.Acknowledge(JobState::kReady, {1}).status().code()),
                   static_cast<int>(StatusCode::kInvalidArgument));
}

void DeleteSchedulesReplicaDeletion(void**) {
  MemoryDatastore store;
  assert_status_ok(store.CreateRepository(Repo(7, "c.git")));
  assert_status_ok(store.SetGeneration(7, "gitaly-2", 0));
  auto removed = store.DeleteRepository("default", "c.git", "gitaly-1", "corr");
  assert_status_ok(removed.status());
  assert_true(removed->has_value());
  assert_false(store.GetRepository("default", "c.git")->has_value());
  // The pending update of gitaly-3 is dropped; gitaly-2 gets a deletion.
  auto jobs = store.Jobs();
  assert_int_equal(jobs.size(), 1);
  expect_that(jobs[0].job.change == ChangeType::kDeleteReplica && jobs[0].job.target_node_storage == "gitaly-2",
              "a delete_replica job for gitaly-2");
  assert_false(store.DeleteRepository("default", "c.git", "", "")->has_value());
  assert_int_equal(static_cast<int>(store.RecordWrite(Write{7, "gitaly-1", {}, {}, ""}).code()),
                   static_cast<int>(StatusCode::kNotFound));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ReplicaPathsArePraefects),
      cmocka_unit_test(CreateWriteReplicate),
      cmocka_unit_test(FailedJobsRetryThenDie),
      cmocka_unit_test(DeleteSchedulesReplicaDeletion),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
