// The health consensus: what each praefect records in the datastore and the
// quorum view it reads back. Three HealthManagers share one memory store, as
// three praefects share node_status; node channels are never dialed (the
// test sets each node's local verdict itself).
#include "nodes/health_manager.h"

#include "datastore/memory_datastore.h"
#include "nodes/three_nodes.h"
#include "test_support.h"

#include <thread>

namespace {

using praefect::nodes::HealthManager;
using praefect::nodes::NodeSet;
using praefect::nodes::testing::SetHealthy;
using praefect::nodes::testing::ThreeNodes;

// One praefect: its own node set (its local view) and health manager.
struct Praefect {
  Praefect(praefect::datastore::Datastore* store, const std::string& name) {
    nodes = ThreeNodes();
    praefect::nodes::HealthManagerOptions options;
    options.praefect_name = name;
    options.window = std::chrono::seconds(10);
    health = std::make_unique<HealthManager>(store, nodes.get(), options);
  }
  // Sets this praefect's local verdicts.
  void Sees(std::initializer_list<const char*> healthy) { SetHealthy(*nodes, healthy); }
  std::unique_ptr<NodeSet> nodes;
  std::unique_ptr<HealthManager> health;
};

using Storages = std::vector<std::string>;

void QuorumDecides(void**) {
  praefect::datastore::MemoryDatastore store;
  auto now = std::chrono::steady_clock::now();
  store.SetClock([&] { return now; });
  Praefect a(&store, "a"), b(&store, "b"), c(&store, "c");

  // Before any Sync the local view stands in.
  a.Sees({"gitaly-2"});
  expect_that(a.health->QuorumHealthy("default") == Storages{"gitaly-2"}, "local view before the first sync");

  // c is cut off from the nodes: it sees none healthy. a and b see all.
  a.Sees({"gitaly-1", "gitaly-2", "gitaly-3"});
  b.Sees({"gitaly-1", "gitaly-2", "gitaly-3"});
  c.Sees({});
  for (Praefect* p : {&a, &b, &c}) assert_status_ok(p->health->Sync());
  assert_status_ok(a.health->Sync());
  expect_that(a.health->QuorumHealthy("default") == (Storages{"gitaly-1", "gitaly-2", "gitaly-3"}),
              "one praefect cut off does not make the nodes unhealthy");
  expect_that(c.health->QuorumHealthy("default") == (Storages{"gitaly-1", "gitaly-2", "gitaly-3"}),
              "the cut-off praefect reads the same quorum view");

  // gitaly-1 fails for a: 1 of 3 praefects still sees it, fewer than 2.
  now += std::chrono::seconds(1);
  a.Sees({"gitaly-2", "gitaly-3"});
  assert_status_ok(a.health->Sync());
  expect_that(a.health->QuorumHealthy("default") == (Storages{"gitaly-2", "gitaly-3"}),
              "a node seen healthy by only 1 of 3 praefects is unhealthy");
  expect_that(a.health->options().praefect_name == "a", "name kept");

  // c stops checking (its rows age out of the window): 2 praefects are
  // active, and b alone (1 of 2, half) keeps gitaly-1 healthy.
  now += std::chrono::seconds(11);
  a.Sees({"gitaly-2", "gitaly-3"});
  assert_status_ok(a.health->Sync());
  assert_status_ok(b.health->Sync());
  assert_status_ok(a.health->Sync());
  expect_that(a.health->QuorumHealthy("default") == (Storages{"gitaly-1", "gitaly-2", "gitaly-3"}),
              "half of the active praefects is a quorum; inactive ones do not count");
  expect_that(a.health->QuorumHealthy("nonexistent").empty(), "an unknown virtual storage has no healthy node");
}

void SyncThenStartAndStop(void**) {
  praefect::datastore::MemoryDatastore store;
  Praefect a(&store, "a");
  a.Sees({"gitaly-1", "gitaly-3"});
  assert_status_ok(a.health->Sync());
  expect_that(a.health->QuorumHealthy("default") == (Storages{"gitaly-1", "gitaly-3"}), "synced");
  // Start/Stop run the background thread without a round: nothing breaks.
  a.health->Start();
  a.health->Stop();
}

// serve takes calls before its first round is recorded (its listeners are
// up first; socket activation queues calls there): a write then waits for
// that round instead of failing. Found by package/nspawn: one call in 142
// failed UNAVAILABLE across a systemctl restart.
void AwaitRecordedBeforeStartWaitsForTheFirstSync(void**) {
  praefect::datastore::MemoryDatastore store;
  Praefect a(&store, "a");
  a.Sees({"gitaly-1"});
  praefect::Status refused = a.health->AwaitRecorded(std::chrono::milliseconds(0));
  expect_that(refused.code() == praefect::StatusCode::kUnavailable &&
                  refused.message().find("Retry in a few seconds") != std::string::npos,
              "no round recorded and no time to wait: refused, got " + refused.ToString());
  std::thread first_sync([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    assert_status_ok(a.health->Sync());
  });
  const auto start = std::chrono::steady_clock::now();
  praefect::Status st = a.health->AwaitRecorded(std::chrono::seconds(10));
  const auto took = std::chrono::steady_clock::now() - start;
  first_sync.join();
  expect_that(st.ok(), "the first Sync lets the write through, got " + st.ToString());
  expect_that(took < std::chrono::seconds(10), "woken by the Sync, not by the timeout");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(QuorumDecides),
      cmocka_unit_test(SyncThenStartAndStop),
      cmocka_unit_test(AwaitRecordedBeforeStartWaitsForTheFirstSync),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
