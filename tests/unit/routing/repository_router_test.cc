// Write routing after a database outage, against a real PostgreSQL: an
// outage longer than the quorum window leaves every node_status row stale,
// and an election run on them finds no node healthy and clears the
// repository's primary. The router must not elect until this praefect's own
// health checks are recorded again.
#include "routing/repository_router.h"

#include <thread>

#include "datastore/postgres/test_db.h"
#include "nodes/three_nodes.h"

namespace {

using praefect::StatusCode;
using praefect::testing::PgServer;
using praefect::testing::TestDb;
using std::chrono::milliseconds;
namespace datastore = praefect::datastore;

// Long enough that a Sync and the call after it fall inside it on a busy
// machine; the test waits it out twice.
constexpr milliseconds kWindow{1500};

// One praefect over `store`: its nodes (never dialed; every one locally
// healthy), health manager and router.
struct Praefect {
  Praefect(datastore::Datastore* store, milliseconds await_health) {
    nodes = praefect::nodes::testing::ThreeNodes();
    praefect::nodes::testing::SetHealthy(*nodes, {"gitaly-1", "gitaly-2", "gitaly-3"});
    praefect::nodes::HealthManagerOptions health_options;
    health_options.praefect_name = "p1";
    health_options.window = kWindow;
    health = std::make_unique<praefect::nodes::HealthManager>(store, nodes.get(), health_options);
    praefect::routing::Options options;
    options.window = kWindow;
    options.await_health = await_health;
    router = std::make_unique<praefect::routing::RepositoryRouter>(store, health.get(), options);
  }
  praefect::StatusOr<std::string> Write(datastore::Datastore& store, const std::string& rel) {
    auto repo = store.GetRepository("default", rel);
    if (!repo.ok()) return repo.status();
    auto node = router->RouteWrite(nodes->virtual_storages()[0], **repo);
    if (!node.ok()) return node.status();
    return (*node)->storage;
  }
  std::unique_ptr<praefect::nodes::NodeSet> nodes;
  std::unique_ptr<praefect::nodes::HealthManager> health;
  std::unique_ptr<praefect::routing::RepositoryRouter> router;
};

// A repository on every node at generation 0, primary gitaly-1.
void Replicated(datastore::Datastore& store, const std::string& rel) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  datastore::NewRepository r{*id, "default", rel, datastore::DeriveReplicaPath(*id), "gitaly-1", {}, "", {}};
  assert_status_ok(store.CreateRepository(r));
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 0));
  assert_status_ok(store.SetGeneration(*id, "gitaly-3", 0));
}

// repositories."primary" of `rel`, on a connection of its own (the
// restarts break TestDb's).
std::string RecordedPrimary(const TestDb& db, const std::string& rel) {
  auto conn = datastore::postgres::Connection::Open(db.conninfo, praefect::testing::In(milliseconds(5000)),
                                                    milliseconds(0));
  if (!conn.ok()) return "ERROR: " + conn.status().ToString();
  auto rows = (*conn)->Exec("SELECT COALESCE(\"primary\", '(none)') FROM repositories WHERE relative_path = $1",
                            {rel}, praefect::testing::In(milliseconds(5000)));
  if (!rows.ok()) return "ERROR: " + rows.status().ToString();
  return rows->empty() ? "(no row)" : rows->Text(0, 0);
}

// Stops PostgreSQL for longer than the window; `p` fails to record its
// checks meanwhile.
void OutageLongerThanTheWindow(Praefect& p) {
  assert_true(PgServer::Shared().Stop());
  expect_that(!p.health->Sync().ok(), "no health recorded while PostgreSQL is down");
  std::this_thread::sleep_for(kWindow + milliseconds(200));  // the outage's length is the point
  assert_true(PgServer::Shared().Start());
}

int64_t IdOf(datastore::Datastore& store, const std::string& rel) {
  auto repo = store.GetRepository("default", rel);
  assert_status_ok(repo.status());
  assert_true(repo->has_value());
  return (*repo)->repository_id;
}

void NoElectionUntilOwnChecksAreRecorded(void**) {
  TestDb db;
  auto store = db.Store();
  Praefect p(store.get(), milliseconds(0));
  Replicated(*store, "a.git");
  Replicated(*store, "b.git");
  assert_status_ok(p.health->Sync());
  auto routed = p.Write(*store, "a.git");
  assert_status_ok(routed.status());
  expect_that(*routed == "gitaly-1", "the recorded primary takes writes, got " + *routed);

  OutageLongerThanTheWindow(p);
  // What the router guards against: an election now sees no praefect
  // active within the window, so no healthy node, and clears the primary.
  auto raw = store->GetPrimary(IdOf(*store, "b.git"), kWindow);
  assert_status_ok(raw.status());
  expect_that(raw->primary.empty() && RecordedPrimary(db, "b.git") == "(none)",
              "an election on the stale records clears the primary (the hazard), got " + raw->primary);

  routed = p.Write(*store, "a.git");
  expect_that(routed.status().code() == StatusCode::kUnavailable, "refused, got " + routed.status().ToString());
  const std::string& msg = routed.status().message();
  expect_that(msg.starts_with("repository \"a.git\" in virtual storage \"default\": its primary is not looked up: "
                              "this praefect could not record its health checks of the nodes in the database (") &&
                  msg.find("Retry in a few seconds") != std::string::npos,
              "the repository, what happened and to retry, got " + msg);
  expect_that(RecordedPrimary(db, "a.git") == "gitaly-1", "the primary is not cleared");

  // Once a round is recorded, the quorum view is this praefect's fresh one.
  assert_status_ok(p.health->Sync());
  routed = p.Write(*store, "a.git");
  assert_status_ok(routed.status());
  expect_that(*routed == "gitaly-1" && RecordedPrimary(db, "a.git") == "gitaly-1", "the same primary, got " + *routed);

  // Records that aged without an error (health checks not recorded for a
  // window) are refused the same way.
  std::this_thread::sleep_for(kWindow + milliseconds(200));
  routed = p.Write(*store, "a.git");
  expect_that(routed.status().code() == StatusCode::kUnavailable &&
                  routed.status().message().find("for longer than [failover] quorum_window") != std::string::npos,
              "refused, got " + routed.status().ToString());
  expect_that(RecordedPrimary(db, "a.git") == "gitaly-1", "the primary is not cleared");
}

// With the health thread running, a write after the outage asks for a
// round at once and waits for it rather than failing.
void FirstWriteWaitsForTheRound(void**) {
  TestDb db;
  auto store = db.Store();
  Praefect p(store.get(), milliseconds(5000));
  Replicated(*store, "c.git");
  assert_status_ok(p.health->Sync());
  p.health->Start();  // no periodic rounds here: the nodes are not checked
  OutageLongerThanTheWindow(p);
  auto start = std::chrono::steady_clock::now();
  auto routed = p.Write(*store, "c.git");
  auto took = std::chrono::steady_clock::now() - start;
  assert_status_ok(routed.status());
  expect_that(*routed == "gitaly-1" && RecordedPrimary(db, "c.git") == "gitaly-1", "the same primary");
  expect_that(took < milliseconds(2000), "the round asked for is recorded at once");
  p.health->Stop();
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(NoElectionUntilOwnChecksAreRecorded),
      cmocka_unit_test(FirstWriteWaitsForTheRound),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
