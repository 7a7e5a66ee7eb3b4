// PostgresDatastore as the TrackingStore, against a real PostgreSQL:
// remove-repository's record and job removal, track-repository's update
// jobs (no duplicate of a waiting one), list-untracked-repositories' lookup.
#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::testing::TestDb;

namespace {

#define expect_text(got, want)                                        \
  do {                                                                \
    const std::string got_ = (got), want_ = (want);                   \
    expect_that(got_ == want_, "\"" + want_ + "\", got \"" + got_ + "\""); \
  } while (0)

// A repository with its primary on gitaly-1 only.
int64_t Repo(PostgresDatastore& store, const std::string& rel) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  assert_status_ok(store.CreateRepository(NewRepository{*id, "default", rel, DeriveReplicaPath(*id), "gitaly-1", {},
                                                        "", {}}));
  return *id;
}

void DeleteRecordKeepsNothingButQueuesNothing(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t id = Repo(*store, "a.git");
  assert_status_ok(store->SetGeneration(id, "gitaly-2", 0));
  Repo(*store, "b.git");
  auto removed = store->DeleteRepositoryRecord("default", "a.git");
  assert_status_ok(removed.status());
  expect_that(*removed, "a.git was tracked");
  expect_text(db.Scalar("SELECT count(*) FROM storage_repositories WHERE relative_path = 'a.git'"), "0");
  expect_text(db.Scalar("SELECT count(*) FROM replication_queue"), "0");
  expect_text(db.Scalar("SELECT string_agg(relative_path, ',') FROM repositories"), "b.git");
  auto again = store->DeleteRepositoryRecord("default", "a.git");
  expect_that(again.ok() && !*again, "a second removal finds nothing");
  auto other_vs = store->DeleteRepositoryRecord("other", "b.git");
  expect_that(other_vs.ok() && !*other_vs, "the virtual storage counts");
}

void RemoveJobsSparesInProgressAndOptionallyDeletions(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");
  int64_t b = Repo(*store, "b.git");
  expect_that(*store->EnqueueUpdate(a, "gitaly-1", "gitaly-2", "c1"), "queued a.git -> gitaly-2");
  expect_that(*store->EnqueueUpdate(a, "gitaly-1", "gitaly-3", "c1"), "queued a.git -> gitaly-3");
  expect_that(*store->EnqueueUpdate(b, "gitaly-1", "gitaly-2", "c1"), "queued b.git -> gitaly-2");
  // One of a.git's jobs taken by a worker.
  auto taken = store->Dequeue("default", "gitaly-2", 10);
  assert_status_ok(taken.status());
  db.Scalar("INSERT INTO replication_queue (lock_id, job) VALUES ('default|gitaly-3|a.git', "
            "jsonb_build_object('change', 'delete_replica', 'virtual_storage', 'default', 'relative_path', 'a.git', "
            "'repository_id', " + std::to_string(a) + ", 'target_node_storage', 'gitaly-3'))");
  auto busy = store->RemoveReplicationJobs("default", "a.git", true);
  assert_status_ok(busy.status());
  expect_that(*busy == 1, "a.git's job to gitaly-2 is in progress, got " + std::to_string(*busy));
  expect_text(db.Scalar("SELECT string_agg(job->>'relative_path' || '>' || (job->>'target_node_storage') || ':' || "
                          "state || ':' || (job->>'change'), ',' ORDER BY id) FROM replication_queue"),
                "a.git>gitaly-2:in_progress:update,b.git>gitaly-2:in_progress:update,"
                "a.git>gitaly-3:ready:delete_replica");
  assert_status_ok(store->Acknowledge(JobState::kCompleted, {(*taken)[0].id, (*taken)[1].id}).status());
  auto done = store->RemoveReplicationJobs("default", "a.git", false);
  expect_that(done.ok() && *done == 0, "nothing in progress any more");
  expect_text(db.Scalar("SELECT count(*) FROM replication_queue WHERE job->>'relative_path' = 'a.git'"), "0");
}

void EnqueueUpdateSkipsAWaitingDuplicate(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");
  auto first = store->EnqueueUpdate(a, "gitaly-1", "gitaly-2", "c1");
  assert_status_ok(first.status());
  expect_that(*first, "queued");
  auto second = store->EnqueueUpdate(a, "gitaly-1", "gitaly-2", "c2");
  expect_that(second.ok() && !*second, "a ready job from the same source is not duplicated");
  auto other = store->EnqueueUpdate(a, "gitaly-1", "gitaly-3", "c2");
  expect_that(other.ok() && *other, "another target is queued");
  expect_text(db.Scalar("SELECT string_agg(job->>'target_node_storage' || '<' || (job->>'source_node_storage') || "
                          "':' || (job->>'replica_path'), ',' ORDER BY id) FROM replication_queue"),
                "gitaly-2<gitaly-1:" + DeriveReplicaPath(a) + ",gitaly-3<gitaly-1:" + DeriveReplicaPath(a));
  auto gone = store->EnqueueUpdate(a + 100, "gitaly-1", "gitaly-2", "c3");
  expect_that(gone.ok() && !*gone, "an unknown repository queues nothing");
}

void UntrackedReplicaPathsPerStorage(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");  // a replica on gitaly-1 only
  const std::string pa = DeriveReplicaPath(a);
  auto on1 = store->UntrackedReplicaPaths("default", "gitaly-1", {"z.git", pa, "y.git"});
  assert_status_ok(on1.status());
  expect_that((*on1 == std::vector<std::string>{"z.git", "y.git"}), "gitaly-1 tracks a.git's replica");
  auto on2 = store->UntrackedReplicaPaths("default", "gitaly-2", {pa});
  expect_that((on2.ok() && *on2 == std::vector<std::string>{pa}), "gitaly-2 has no replica record of a.git");
  auto other = store->UntrackedReplicaPaths("other", "gitaly-1", {pa});
  expect_that(other.ok() && other->size() == 1, "another virtual storage does not track it");
  auto none = store->UntrackedReplicaPaths("default", "gitaly-1", {});
  expect_that(none.ok() && none->empty(), "no paths, no answer");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(DeleteRecordKeepsNothingButQueuesNothing),
      cmocka_unit_test(RemoveJobsSparesInProgressAndOptionallyDeletions),
      cmocka_unit_test(EnqueueUpdateSkipsAWaitingDuplicate),
      cmocka_unit_test(UntrackedReplicaPathsPerStorage),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
