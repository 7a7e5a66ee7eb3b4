// PostgresDatastore as the ContentVerificationStore, against a real
// PostgreSQL: the shared walk (batches in id order, passes, two praefects
// never claiming one repository twice, repositories being replicated
// skipped) and the marking of a mismatching replica (outdated, an update
// job from the primary, nothing when a write intervened, never the primary).
#include <algorithm>
#include <set>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::testing::TestDb;

namespace {

#define expect_text(got, want)                                             \
  do {                                                                     \
    const std::string got_ = (got), want_ = (want);                        \
    expect_that(got_ == want_, "\"" + want_ + "\", got \"" + got_ + "\""); \
  } while (0)

// A repository on gitaly-1 (primary), gitaly-2 and gitaly-3, all at
// generation 1.
int64_t Repo(PostgresDatastore& store, const std::string& rel) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  assert_status_ok(store.CreateRepository(
      NewRepository{*id, "default", rel, DeriveReplicaPath(*id), "gitaly-1", {}, "", {}}));
  assert_status_ok(store.RecordWrite(Write{*id, "gitaly-1", {}, {}, ""}));
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 1));
  assert_status_ok(store.SetGeneration(*id, "gitaly-3", 1));
  return *id;
}

std::string Paths(const ContentBatch& batch) {
  std::string out;
  for (const auto& c : batch.repositories) out += (out.empty() ? "" : ",") + c.relative_path;
  return out;
}

void TheWalkGoesByIdAndStartsOver(void**) {
  TestDb db;
  auto store = db.Store();
  for (int i = 0; i < 5; ++i) Repo(*store, "r" + std::to_string(i) + ".git");
  auto first = store->ClaimContentBatch(2);
  assert_status_ok(first.status());
  expect_text(Paths(*first), "r0.git,r1.git");
  expect_that(!first->ended_pass && first->passes == 0, "no pass ended yet");
  const ContentCandidate& c = first->repositories[0];
  expect_that(c.primary == "gitaly-1" && c.generation == 1 &&
                  c.up_to_date == (std::vector<std::string>{"gitaly-1", "gitaly-2", "gitaly-3"}),
              "the candidate's primary, generation and up-to-date storages");
  // Another praefect goes on where the first stopped.
  auto other = db.Store();
  auto second = other->ClaimContentBatch(2);
  expect_text(Paths(*second), "r2.git,r3.git");
  auto third = store->ClaimContentBatch(2);
  expect_text(Paths(*third), "r4.git");
  expect_that(third->ended_pass && third->passes == 1, "the short batch ended the first pass");
  auto again = store->ClaimContentBatch(2);
  expect_text(Paths(*again), "r0.git,r1.git");
}

void RepositoriesBeingReplicatedAreLeftAlone(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");
  Repo(*store, "b.git");
  int64_t c = Repo(*store, "c.git");
  auto queued = store->EnqueueUpdate(a, "gitaly-1", "gitaly-2", "x");
  assert_status_ok(queued.status());
  // c's primary is behind (it missed a write another replica took).
  db.Scalar("UPDATE storage_repositories SET generation = 0 WHERE repository_id = " + std::to_string(c) +
            " AND storage = 'gitaly-1'");
  auto batch = store->ClaimContentBatch(10);
  assert_status_ok(batch.status());
  expect_text(Paths(*batch), "b.git");
  expect_that(batch->ended_pass, "the walk reached the end");
  // An empty database walks nothing and counts no pass.
  TestDb empty;
  auto none = empty.Store()->ClaimContentBatch(10);
  expect_that(none.ok() && none->repositories.empty() && !none->ended_pass && none->passes == 0,
              "no pass over nothing");
}

void AMismatchIsMarkedAndRepairedFromThePrimary(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");
  auto marked = store->MarkContentMismatch(a, "gitaly-3", 1, "gitaly-1", "corr-1");
  assert_status_ok(marked.status());
  expect_that(*marked, "marked");
  expect_text(db.Scalar("SELECT string_agg(storage || ':' || generation, ',' ORDER BY storage) FROM "
                        "storage_repositories WHERE repository_id = " + std::to_string(a)),
              "gitaly-1:1,gitaly-2:1,gitaly-3:0");
  expect_text(db.Scalar("SELECT job->>'change' || ' ' || (job->>'source_node_storage') || '>' || "
                        "(job->>'target_node_storage') || ' ' || (meta->>'correlation_id') || ' ' || lock_id "
                        "FROM replication_queue"),
              "update gitaly-1>gitaly-3 corr-1 default|gitaly-3|a.git");
  // The job is what a worker runs.
  auto taken = store->Dequeue("default", "gitaly-3", 10);
  expect_that(taken.ok() && taken->size() == 1 && (*taken)[0].job.replica_path == DeriveReplicaPath(a),
              "the worker dequeues it");
}

void AWriteMeanwhileOrThePrimaryChangesNothing(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");
  assert_status_ok(store->RecordWrite(Write{a, "gitaly-1", {"gitaly-2", "gitaly-3"}, {}, ""}));
  auto stale = store->MarkContentMismatch(a, "gitaly-3", 1, "gitaly-1", "c");
  expect_that(stale.ok() && !*stale, "the generation moved on: nothing marked");
  auto primary = store->MarkContentMismatch(a, "gitaly-1", 2, "gitaly-1", "c");
  expect_that(primary.ok() && !*primary, "the primary is never marked");
  auto behind_source = store->MarkContentMismatch(a, "gitaly-3", 2, "gitaly-9", "c");
  expect_that(behind_source.ok() && !*behind_source, "a source without the generation marks nothing");
  expect_text(db.Scalar("SELECT string_agg(storage || ':' || generation, ',' ORDER BY storage) FROM "
                        "storage_repositories WHERE repository_id = " + std::to_string(a)),
              "gitaly-1:2,gitaly-2:2,gitaly-3:2");
  expect_text(db.Scalar("SELECT count(*) FROM replication_queue"), "0");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TheWalkGoesByIdAndStartsOver),
      cmocka_unit_test(RepositoriesBeingReplicatedAreLeftAlone),
      cmocka_unit_test(AMismatchIsMarkedAndRepairedFromThePrimary),
      cmocka_unit_test(AWriteMeanwhileOrThePrimaryChangesNothing),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
