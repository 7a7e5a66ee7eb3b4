// PostgresDatastore as the VerificationStore, against a real PostgreSQL:
// which replicas a verifier leases and in what order (background-work.md
// §5), that praefects verifying at once take different replicas (SKIP
// LOCKED), how results are recorded (with and without deletions, errors,
// records written since the check), stale leases, that `verify`
// (MarkUnverified) makes replicas due at once, and that verification alone
// never notifies the read caches.
#include <algorithm>
#include <mutex>
#include <set>
#include <thread>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::testing::In;
using praefect::testing::TestDb;
using std::chrono::milliseconds;

namespace {

#define expect_text(got, want)                                             \
  do {                                                                     \
    const std::string got_ = (got), want_ = (want);                        \
    expect_that(got_ == want_, "\"" + want_ + "\", got \"" + got_ + "\""); \
  } while (0)

const milliseconds kHour(3600 * 1000);
const milliseconds kLease(30000);
const StoragePairs kAllHealthy = {{"default", "gitaly-1"}, {"default", "gitaly-2"}};

// A repository with replicas on gitaly-1 and gitaly-2 at generation 0.
int64_t Repo(PostgresDatastore& store, const std::string& rel) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  assert_status_ok(store.CreateRepository(
      NewRepository{*id, "default", rel, DeriveReplicaPath(*id), "gitaly-1", {}, "", {}}));
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 0));
  return *id;
}

// Sets verified_at of a replica to `age` ago ("" for NULL).
void VerifiedAgo(TestDb& db, const std::string& rel, const std::string& storage, const std::string& age) {
  db.Scalar("UPDATE storage_repositories SET verified_at = " +
            (age.empty() ? std::string("NULL") : "now() - interval '" + age + "'") + " WHERE relative_path = '" +
            rel + "' AND storage = '" + storage + "'");
}

void VerifyAll(TestDb& db) { db.Scalar("UPDATE storage_repositories SET verified_at = now()"); }

// "<relative_path>/<storage>" of each job, in the order given.
std::string Describe(const std::vector<VerificationJob>& jobs) {
  std::string out;
  for (const auto& j : jobs) out += (out.empty() ? "" : ",") + j.relative_path + "/" + j.storage;
  return out;
}

std::vector<VerificationJob> Lease(PostgresDatastore& store, int limit = 25,
                                   const StoragePairs& healthy = kAllHealthy) {
  auto jobs = store.LeaseVerificationJobs(healthy, kHour, limit, kLease);
  assert_status_ok(jobs.status());
  return *jobs;
}

VerificationResult Result(const VerificationJob& job, bool answered, bool exists) {
  VerificationResult r;
  r.job = job;
  r.answered = answered;
  r.exists = exists;
  return r;
}

void NeverVerifiedFirstThenOldestOfHealthyStorages(void**) {
  TestDb db;
  auto store = db.Store();
  for (const char* rel : {"a.git", "b.git", "c.git", "d.git"}) Repo(*store, rel);
  VerifyAll(db);
  VerifiedAgo(db, "c.git", "gitaly-1", "");
  VerifiedAgo(db, "a.git", "gitaly-1", "3 hours");
  VerifiedAgo(db, "b.git", "gitaly-1", "2 hours");
  VerifiedAgo(db, "d.git", "gitaly-1", "10 minutes");  // not due (interval 1 h)
  VerifiedAgo(db, "d.git", "gitaly-2", "");             // due, but gitaly-2 is not healthy below
  auto jobs = Lease(*store, 2, {{"default", "gitaly-1"}});
  expect_text(Describe(jobs), "c.git/gitaly-1,a.git/gitaly-1");
  expect_that(jobs[0].replica_path == DeriveReplicaPath(jobs[0].repository_id) && jobs[0].virtual_storage == "default",
              "the job names the replica's path on the node");
  expect_text(db.Scalar("SELECT string_agg(relative_path, ',' ORDER BY relative_path) FROM storage_repositories "
                        "WHERE verification_leased_until BETWEEN now() + interval '29 seconds' "
                        "AND now() + interval '31 seconds'"),
              "a.git,c.git");
  // Leased rows are not leased again; b.git is what is left due.
  expect_text(Describe(Lease(*store, 25, {{"default", "gitaly-1"}})), "b.git/gitaly-1");
  expect_text(Describe(Lease(*store, 25, {{"default", "gitaly-1"}})), "");
  // Another virtual storage's pair names nothing here.
  expect_text(Describe(Lease(*store, 25, {{"other", "gitaly-2"}})), "");
  expect_text(Describe(Lease(*store, 25, kAllHealthy)), "d.git/gitaly-2");
}

void MarkUnverifiedMakesReplicasDueAtOnce(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");
  Repo(*store, "b.git");
  VerifyAll(db);
  expect_text(Describe(Lease(*store)), "");
  // praefect verify -repository-id N
  auto marked = store->MarkUnverified(UnverifiedSelector{a, "", ""});
  assert_status_ok(marked.status());
  expect_that(*marked == 2, "both replicas of a.git marked");
  auto jobs = Lease(*store);
  std::vector<std::string> got;
  for (const auto& j : jobs) got.push_back(j.relative_path + "/" + j.storage);
  std::sort(got.begin(), got.end());
  expect_that((got == std::vector<std::string>{"a.git/gitaly-1", "a.git/gitaly-2"}), "a.git due at once");
}

void TwoStoresAtOnceTakeDifferentReplicas(void**) {
  TestDb db;
  auto a = db.Store();
  auto b = db.Store();
  for (int i = 0; i < 60; ++i) Repo(*a, "r" + std::to_string(i) + ".git");
  // A transaction holding some rows (another praefect mid-statement): they
  // are skipped, not waited for.
  assert_status_ok(db.sql->ExecScript("BEGIN; SELECT 1 FROM storage_repositories WHERE relative_path IN "
                                      "('r0.git', 'r1.git') FOR NO KEY UPDATE",
                                      In(milliseconds(5000))));
  const auto before = std::chrono::steady_clock::now();
  auto first = Lease(*a, 10);
  expect_that(std::chrono::steady_clock::now() - before < milliseconds(3000), "locked rows are not waited for");
  for (const auto& j : first)
    expect_that(j.relative_path != "r0.git" && j.relative_path != "r1.git", "held row skipped: " + j.relative_path);
  assert_status_ok(db.sql->ExecScript("COMMIT", In(milliseconds(5000))));
  // The rest, by two stores at once, 25 at a time: every replica once.
  std::mutex mu;
  std::multiset<std::string> seen;
  for (const auto& j : first) seen.insert(j.relative_path + "/" + j.storage);
  std::vector<std::thread> threads;
  for (auto* store : {a.get(), b.get()}) {
    threads.emplace_back([&, store] {
      for (;;) {
        auto jobs = store->LeaseVerificationJobs(kAllHealthy, kHour, 25, kLease);
        if (!jobs.ok() || jobs->empty()) return;
        std::lock_guard lock(mu);
        for (const auto& j : *jobs) seen.insert(j.relative_path + "/" + j.storage);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(seen.begin(), seen.end());
  expect_that(seen.size() == 120 && distinct.size() == 120,
              "120 replicas leased once each, got " + std::to_string(seen.size()) + " leases of " +
                  std::to_string(distinct.size()));
}

void ResultsWithDeletions(void**) {
  TestDb db;
  auto store = db.Store();
  Repo(*store, "a.git");
  Repo(*store, "b.git");
  VerifiedAgo(db, "b.git", "gitaly-2", "2 hours");
  auto jobs = Lease(*store);
  expect_that(jobs.size() == 4, "four replicas due");
  std::vector<VerificationResult> results;
  for (const auto& j : jobs) {
    if (j.relative_path == "a.git" && j.storage == "gitaly-2") {
      results.push_back(Result(j, true, false));  // missing
    } else if (j.relative_path == "b.git" && j.storage == "gitaly-2") {
      results.push_back(Result(j, false, false));  // the node did not answer
    } else {
      results.push_back(Result(j, true, true));
    }
  }
  auto recorded = store->RecordVerification(results, true);
  assert_status_ok(recorded.status());
  expect_that(recorded->removed == 1 && recorded->changed == 0, "one record removed");
  expect_text(db.Scalar("SELECT string_agg(relative_path || '/' || storage || ' ' || "
                        "(verification_leased_until IS NULL)::text || ' ' || "
                        "(verified_at > now() - interval '1 minute')::text, ',' ORDER BY relative_path, storage) "
                        "FROM storage_repositories"),
              "a.git/gitaly-1 true true,b.git/gitaly-1 true true,b.git/gitaly-2 true false");
  // The error kept the old verified_at (due again), not NULL.
  expect_text(db.Scalar("SELECT verified_at < now() - interval '1 hour' FROM storage_repositories "
                        "WHERE relative_path = 'b.git' AND storage = 'gitaly-2'"),
              "t");
  // The repository's record stays, even with a replica gone.
  expect_text(db.Scalar("SELECT count(*) FROM repositories"), "2");
  expect_text(Describe(Lease(*store)), "b.git/gitaly-2");
}

void ResultsWithoutDeletionsKeepTheRecord(void**) {
  TestDb db;
  auto store = db.Store();
  Repo(*store, "a.git");
  auto jobs = Lease(*store);
  std::vector<VerificationResult> results;
  for (const auto& j : jobs) results.push_back(Result(j, true, j.storage != "gitaly-2"));
  auto recorded = store->RecordVerification(results, false);
  assert_status_ok(recorded.status());
  expect_that(recorded->removed == 0, "nothing removed");
  expect_text(db.Scalar("SELECT count(*) FROM storage_repositories WHERE verified_at > now() - interval '1 minute' "
                        "AND verification_leased_until IS NULL"),
              "2");
  // Even the last replica of a repository: the repository stays known.
  int64_t b = Repo(*store, "b.git");
  db.Scalar("DELETE FROM storage_repositories WHERE repository_id = " + std::to_string(b) +
            " AND storage = 'gitaly-2'");
  std::vector<VerificationResult> gone;
  for (const auto& j : Lease(*store)) gone.push_back(Result(j, true, false));
  expect_that(gone.size() == 1, "b.git's one replica due");
  recorded = store->RecordVerification(gone, true);
  expect_that(recorded.ok() && recorded->removed == 1, "its record removed");
  expect_text(db.Scalar("SELECT count(*) FROM repositories WHERE relative_path = 'b.git'"), "1");
}

void ARecordWrittenSinceTheCheckIsKept(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t a = Repo(*store, "a.git");
  VerifyAll(db);
  VerifiedAgo(db, "a.git", "gitaly-2", "");
  auto jobs = Lease(*store);
  expect_that(jobs.size() == 1 && jobs[0].generation == 0, "gitaly-2 leased at generation 0");
  // A replication made the replica again after the check.
  assert_status_ok(store->RecordWrite(Write{a, "gitaly-1", {}, {}, ""}));
  assert_status_ok(store->SetGeneration(a, "gitaly-2", 1));
  auto recorded = store->RecordVerification({Result(jobs[0], true, false)}, true);
  assert_status_ok(recorded.status());
  expect_that(recorded->removed == 0 && recorded->changed == 1, "kept, reported as changed");
  expect_text(db.Scalar("SELECT generation || ' ' || (verified_at IS NULL)::text || ' ' || "
                        "(verification_leased_until IS NULL)::text FROM storage_repositories "
                        "WHERE storage = 'gitaly-2'"),
              "1 true true");
}

void StaleLeasesAreReleasedInBatches(void**) {
  TestDb db;
  auto store = db.Store();
  for (const char* rel : {"a.git", "b.git", "c.git"}) Repo(*store, rel);
  db.Scalar("UPDATE storage_repositories SET verification_leased_until = now() - interval '31 seconds' "
            "WHERE storage = 'gitaly-1'");
  db.Scalar("UPDATE storage_repositories SET verification_leased_until = now() - interval '10 seconds' "
            "WHERE storage = 'gitaly-2' AND relative_path = 'a.git'");
  db.Scalar("UPDATE storage_repositories SET verification_leased_until = now() + interval '20 seconds' "
            "WHERE storage = 'gitaly-2' AND relative_path = 'b.git'");
  auto first = store->ReleaseStaleVerificationLeases(kLease, 2);
  assert_status_ok(first.status());
  expect_that(first->size() == 2, "a batch of 2");
  auto second = store->ReleaseStaleVerificationLeases(kLease, 2);
  assert_status_ok(second.status());
  std::vector<std::string> released;
  for (const auto& j : *first) released.push_back(j.relative_path + "/" + j.storage);
  for (const auto& j : *second) released.push_back(j.relative_path + "/" + j.storage);
  std::sort(released.begin(), released.end());
  expect_that((released == std::vector<std::string>{"a.git/gitaly-1", "b.git/gitaly-1", "c.git/gitaly-1"}),
              "the three stale leases, over two batches");
  expect_text(db.Scalar("SELECT string_agg(relative_path || '/' || storage, ',' ORDER BY relative_path, storage) "
                        "FROM storage_repositories WHERE verification_leased_until IS NOT NULL"),
              "a.git/gitaly-2,b.git/gitaly-2");
  auto none = store->ReleaseStaleVerificationLeases(kLease, 2);
  expect_that(none.ok() && none->empty(), "a lease expired for less than 30 s is not stale");
  // The index that finds them (migration 0008).
  expect_text(db.Scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'verification_leases'"),
              "CREATE INDEX verification_leases ON public.storage_repositories USING btree "
              "(verification_leased_until) WHERE (verification_leased_until IS NOT NULL)");
}

// What arrived on repositories_updates within `wait`.
std::string Notified(praefect::datastore::postgres::Listener& listener, milliseconds wait) {
  std::string out;
  const auto until = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < until) {
    auto got = listener.Wait(milliseconds(100));
    if (!got.ok()) return "ERROR: " + got.status().ToString();
    for (const auto& n : *got) out += n.payload;
  }
  return out;
}

void VerificationAloneDoesNotNotifyTheCaches(void**) {
  TestDb db;
  auto store = db.Store();
  Repo(*store, "a.git");
  Repo(*store, "b.git");
  praefect::datastore::postgres::Listener listener(db.conninfo, milliseconds(5000));
  assert_status_ok(listener.Listen("repositories_updates", In(milliseconds(5000))));
  auto jobs = Lease(*store);
  std::vector<VerificationResult> results;
  for (const auto& j : jobs) results.push_back(Result(j, j.relative_path == "a.git", true));
  assert_status_ok(store->RecordVerification(results, true).status());
  assert_status_ok(store->ReleaseStaleVerificationLeases(kLease, 25).status());
  expect_text(Notified(listener, milliseconds(500)), "");
  // A removed record changes what the caches hold: notified.
  db.Scalar("UPDATE storage_repositories SET verified_at = NULL");
  results.clear();
  for (const auto& j : Lease(*store)) results.push_back(Result(j, true, j.relative_path != "b.git"));
  assert_status_ok(store->RecordVerification(results, true).status());
  const std::string payload = Notified(listener, milliseconds(1000));
  expect_that(payload.find("b.git") != std::string::npos && payload.find("a.git") == std::string::npos,
              "b.git's removal notified, got " + payload);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(NeverVerifiedFirstThenOldestOfHealthyStorages),
      cmocka_unit_test(MarkUnverifiedMakesReplicasDueAtOnce),
      cmocka_unit_test(TwoStoresAtOnceTakeDifferentReplicas),
      cmocka_unit_test(ResultsWithDeletions),
      cmocka_unit_test(ResultsWithoutDeletionsKeepTheRecord),
      cmocka_unit_test(ARecordWrittenSinceTheCheckIsKept),
      cmocka_unit_test(StaleLeasesAreReleasedInBatches),
      cmocka_unit_test(VerificationAloneDoesNotNotifyTheCaches),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
