// PostgresDatastore as the ContentVerificationStore, against a real
// PostgreSQL: the shared walk (batches in id order, passes, two praefects
// never claiming one repository twice, repositories being replicated
// skipped, a claim's cost independent of where the walk stands) and the
// marking of a mismatching replica (outdated, an update job from the primary,
// nothing when a write intervened, never the primary).
#include <algorithm>
#include <regex>
#include <set>

#include "datastore/postgres_sql.h"
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

// Pages a claim of 10 touches (shared buffers hit or read, the whole
// statement), from EXPLAIN (ANALYZE, BUFFERS) of the store's own statement
// with the walk standing at `next`.
int ClaimPages(TestDb& db, int64_t next) {
  db.Scalar("UPDATE content_verification SET next_repository_id = " + std::to_string(next));
  std::string claim = praefect::datastore::sql::kContentClaim;
  claim = std::regex_replace(claim, std::regex("\\$1\\b"), "10");
  auto rows = db.sql->Exec("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + claim, {},
                           praefect::testing::In(std::chrono::milliseconds(10000)));
  assert_status_ok(rows.status());
  const std::string plan = rows->Text(0, 0);
  std::smatch hit, read;
  const bool found = std::regex_search(plan, hit, std::regex("\"Shared Hit Blocks\": (\\d+)")) &&
                     std::regex_search(plan, read, std::regex("\"Shared Read Blocks\": (\\d+)"));
  expect_that(found, "buffer counts in the plan: " + plan.substr(0, 300));
  return found ? std::stoi(hit[1]) + std::stoi(read[1]) : 0;
}

// On a large cluster the walk must not get slower as it goes: a claim near
// the end of 20,000 repositories reads about as many pages as one at the
// start (a scan from the first repository would read every index page
// before the cursor: ~50 more here, thousands at millions of repositories).
void AClaimReadsOnlyItsBatchWhereverTheWalkStands(void**) {
  TestDb db;
  // Repositories and their primaries' replicas, made in SQL (no NOTIFY
  // triggers, no foreign-key checks): all a claim needs.
  expect_text(db.Scalar("SET session_replication_role = replica"), "");
  expect_text(db.Scalar("INSERT INTO repositories (repository_id, virtual_storage, relative_path, replica_path, "
                        "\"primary\", generation) "
                        "SELECT i, 'default', 'r' || i || '.git', '@cluster/' || i, 'gitaly-1', 1 "
                        "FROM generate_series(1, 20000) AS i"),
              "");
  expect_text(db.Scalar("INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, "
                        "generation) SELECT repository_id, virtual_storage, relative_path, 'gitaly-1', 1 "
                        "FROM repositories"),
              "");
  expect_text(db.Scalar("VACUUM ANALYZE repositories"), "");
  expect_text(db.Scalar("VACUUM ANALYZE storage_repositories"), "");
  ClaimPages(db, 1);  // caches warm, the plan's statistics in place
  const int at_start = ClaimPages(db, 1);
  const int at_end = ClaimPages(db, 19990);
  expect_that(at_start > 0 && at_end <= at_start + 10,
              "a claim at repository 19,990 touched " + std::to_string(at_end) + " pages, one at the start " +
                  std::to_string(at_start));
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
      cmocka_unit_test(AClaimReadsOnlyItsBatchWhereverTheWalkStands),
      cmocka_unit_test(AMismatchIsMarkedAndRepairedFromThePrimary),
      cmocka_unit_test(AWriteMeanwhileOrThePrimaryChangesNothing),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
