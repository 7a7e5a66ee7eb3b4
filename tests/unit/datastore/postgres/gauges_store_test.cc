// The statements behind /db_metrics (PostgresDatastore::QueryGauges) against
// a real PostgreSQL: unavailable repositories by the quorum's health, the
// replication queue by state, replicas pending verification, primaries, and
// the scrape timeout.
#include <map>
#include <set>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::StatusCode;
using praefect::testing::In;
using praefect::testing::TestDb;
using std::chrono::milliseconds;

namespace {

const std::vector<std::string> kNodes = {"gitaly-1", "gitaly-2", "gitaly-3"};

void Check(PostgresDatastore& store, const std::string& praefect, const std::set<std::string>& down) {
  std::vector<NodeHealth> checks;
  for (const auto& n : kNodes) checks.push_back(NodeHealth{"default", n, down.count(n) == 0});
  assert_status_ok(store.RecordHealth(praefect, checks));
}

// A repository whose replicas are `on` (the first one its primary), all at
// generation 0.
int64_t Repository(PostgresDatastore& store, const std::string& rel, const std::vector<std::string>& on) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  NewRepository r{*id, "default", rel, DeriveReplicaPath(*id), on.front(), {}, "", {}};
  assert_status_ok(store.CreateRepository(r));
  for (size_t i = 1; i < on.size(); ++i) assert_status_ok(store.SetGeneration(*id, on[i], 0));
  return *id;
}

DatabaseGauges Query(PostgresDatastore& store, std::optional<milliseconds> verification = std::nullopt) {
  GaugesQuery q;
  q.verification_interval = verification;
  auto g = store.QueryGauges(q);
  assert_status_ok(g.status());
  return *g;
}

int64_t Unavailable(const DatabaseGauges& g, const std::string& vs) {
  for (const auto& u : g.unavailable)
    if (u.virtual_storage == vs) return u.repositories;
  return 0;
}

std::map<std::string, int64_t> Queue(const DatabaseGauges& g) {
  std::map<std::string, int64_t> out;
  for (const auto& q : g.replication_queue) out[q.virtual_storage + "/" + q.target_node + "/" + q.state] = q.jobs;
  return out;
}

std::map<std::string, int64_t> Primaries(const DatabaseGauges& g) {
  std::map<std::string, int64_t> out;
  for (const auto& p : g.primaries) out[p.virtual_storage + "/" + p.storage] = p.repositories;
  return out;
}

void EmptyDatabase(void**) {
  TestDb db;
  auto store = db.Store();
  DatabaseGauges g = Query(*store, milliseconds(60000));
  expect_that(g.unavailable.empty() && g.replication_queue.empty() && g.verification_queue.empty() &&
                  g.primaries.empty(),
              "nothing to report on an empty database");
}

void UnavailableFollowsTheQuorum(void**) {
  TestDb db;
  auto store = db.Store();
  Check(*store, "p1", {});
  Check(*store, "p2", {});
  Repository(*store, "everywhere.git", kNodes);
  Repository(*store, "only-on-1.git", {"gitaly-1"});
  Repository(*store, "on-1-and-2.git", {"gitaly-1", "gitaly-2"});
  expect_that(Unavailable(Query(*store), "default") == 0, "every repository has a healthy replica");
  // gitaly-1 down for both praefects: only-on-1 has no valid primary left.
  Check(*store, "p1", {"gitaly-1"});
  Check(*store, "p2", {"gitaly-1"});
  expect_that(Unavailable(Query(*store), "default") == 1,
              "1 unavailable, got " + std::to_string(Unavailable(Query(*store), "default")));
  // gitaly-2 down too: on-1-and-2 as well.
  Check(*store, "p1", {"gitaly-1", "gitaly-2"});
  Check(*store, "p2", {"gitaly-1", "gitaly-2"});
  expect_that(Unavailable(Query(*store), "default") == 2, "2 unavailable");
  // Down for one praefect of two only: the quorum (half, rounded up) still
  // sees gitaly-1 and gitaly-2 healthy.
  Check(*store, "p2", {});
  expect_that(Unavailable(Query(*store), "default") == 0, "one praefect's view alone does not make them unavailable");
  // Outdated replicas do not count: outdated-2 written on gitaly-1 only
  // (gitaly-2 and gitaly-3 hold the older generation).
  auto id = Repository(*store, "outdated-2.git", kNodes);
  assert_status_ok(store->SetGeneration(id, "gitaly-1", 1));
  expect_that(db.Scalar("UPDATE repositories SET generation = 1 WHERE repository_id = " + std::to_string(id) +
                        " RETURNING 'ok'") == "ok",
              "the repository's latest generation is 1");
  Check(*store, "p1", {"gitaly-1"});
  Check(*store, "p2", {"gitaly-1"});
  expect_that(Unavailable(Query(*store), "default") == 2,
              "only-on-1 and outdated-2 (latest only on gitaly-1), got " +
                  std::to_string(Unavailable(Query(*store), "default")));
}

void QueueByState(void**) {
  TestDb db;
  auto store = db.Store();
  auto id = Repository(*store, "repo.git", {"gitaly-1"});
  auto queued = store->EnqueueUpdate(id, "gitaly-1", "gitaly-2", "c1");
  assert_status_ok(queued.status());
  queued = store->EnqueueUpdate(id, "gitaly-1", "gitaly-3", "c2");
  assert_status_ok(queued.status());
  auto q = Queue(Query(*store));
  expect_that(q.size() == 2 && q["default/gitaly-2/ready"] == 1 && q["default/gitaly-3/ready"] == 1,
              "one ready job per target");
  auto events = store->Dequeue("default", "gitaly-2", 10);
  assert_status_ok(events.status());
  q = Queue(Query(*store));
  expect_that(q["default/gitaly-2/in_progress"] == 1 && q.count("default/gitaly-2/ready") == 0,
              "the dequeued job in progress");
  std::vector<int64_t> ids;
  for (const auto& e : *events) ids.push_back(e.id);
  assert_status_ok(store->Acknowledge(JobState::kCompleted, ids).status());
  q = Queue(Query(*store));
  expect_that(q.size() == 1 && q["default/gitaly-3/ready"] == 1, "the completed job gone");
}

void VerificationAndPrimaries(void**) {
  TestDb db;
  auto store = db.Store();
  Repository(*store, "a.git", kNodes);
  Repository(*store, "b.git", {"gitaly-2", "gitaly-1"});
  auto g = Query(*store, milliseconds(3600 * 1000));
  int64_t unverified = 0, expired = 0;
  for (const auto& v : g.verification_queue) {
    unverified += v.unverified;
    expired += v.expired;
  }
  expect_that(unverified == 5 && expired == 0, "5 replicas never verified, got " + std::to_string(unverified));
  expect_that(db.Scalar("UPDATE storage_repositories SET verified_at = now() - interval '2 hours' "
                        "WHERE storage = 'gitaly-1' RETURNING 'ok'") == "ok",
              "gitaly-1's replicas verified 2 hours ago");
  g = Query(*store, milliseconds(3600 * 1000));
  for (const auto& v : g.verification_queue) {
    if (v.storage == "gitaly-1")
      expect_that(v.expired == 2 && v.unverified == 0, "gitaly-1: 2 expired, got " + std::to_string(v.expired));
  }
  expect_that(Query(*store).verification_queue.empty(), "no verification counts unless asked for");
  auto p = Primaries(g);
  expect_that(p.size() == 2 && p["default/gitaly-1"] == 1 && p["default/gitaly-2"] == 1, "one primary each");
}

void BoundedByTheScrapeTimeout(void**) {
  TestDb db;
  auto store = db.Store();
  Repository(*store, "a.git", kNodes);
  // Another session holds the repositories table: the scrape's statement
  // waits, and gives up at the timeout.
  auto locker = praefect::datastore::postgres::Connection::Open(db.conninfo, In(milliseconds(5000)), milliseconds(0));
  assert_status_ok(locker.status());
  assert_status_ok((*locker)->Exec("BEGIN", {}, In(milliseconds(5000))).status());
  assert_status_ok((*locker)->Exec("LOCK TABLE repositories IN ACCESS EXCLUSIVE MODE", {}, In(milliseconds(5000))).status());
  GaugesQuery q;
  q.timeout = milliseconds(300);
  auto start = std::chrono::steady_clock::now();
  auto g = store->QueryGauges(q);
  auto took = std::chrono::steady_clock::now() - start;
  expect_that(!g.ok(), "the scrape fails while the table is locked");
  expect_that(g.status().message().find("unavailable repositories") != std::string::npos,
              "the error names the statement, got " + g.status().ToString());
  expect_that(took < std::chrono::seconds(5), "it gave up at the timeout, not later");
  assert_status_ok((*locker)->Exec("ROLLBACK", {}, In(milliseconds(5000))).status());
  assert_status_ok(store->QueryGauges(GaugesQuery{}).status());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(EmptyDatabase),
      cmocka_unit_test(UnavailableFollowsTheQuorum),
      cmocka_unit_test(QueueByState),
      cmocka_unit_test(VerificationAndPrimaries),
      cmocka_unit_test(BoundedByTheScrapeTimeout),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
