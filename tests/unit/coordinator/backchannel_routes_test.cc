// Which node connection a call takes with [backchannel] enabled.
#include "coordinator_fixture.h"

namespace {

using namespace coordinator_test;  // NOLINT: the fixture

// With [backchannel]: only a transactional write (and each of its voters)
// takes the nodes' backchannel connections, the ones over which a node can
// vote; reads and the calls that do not vote take the plain ones.
void OnlyTransactionalWritesTakeTheBackchannel(void**) {
  praefect::datastore::MemoryDatastore store;
  praefect::transactions::Manager manager(nullptr);
  Fixture f(false, &store, true, nullptr, &manager);
  SetHealth(f, store, {"gitaly-1", "gitaly-2", "gitaly-3"});
  for (const char* n : {"gitaly-1", "gitaly-2", "gitaly-3"}) {
    const praefect::nodes::Node& node = f.NodeNamed(n);
    expect_that(node.backchannel && node.voting_upstream != nullptr, std::string(n) + ": a backchannel upstream");
    expect_that(node.voting_upstream != node.upstream, std::string(n) + ": a connection pool entry of its own");
  }

  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  praefect::datastore::NewRepository r{*id, "default", "tx.git", praefect::datastore::DeriveReplicaPath(*id),
                                       "gitaly-1", {}, "", {}};
  assert_status_ok(store.CreateRepository(r));
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 0));
  assert_status_ok(store.SetGeneration(*id, "gitaly-3", 0));

  auto route = f.Decide("/gitaly.RepositoryService/WriteRef", Exists("default", "tx.git"));
  assert_status_ok(route.status());
  expect_that(route->upstream == f.NodeNamed("gitaly-1").voting_upstream, "the transactional write: backchannel");
  std::set<const void*> secondaries;
  for (const auto& secondary : route->secondaries) secondaries.insert(secondary.upstream.get());
  const std::set<const void*> voting = {f.NodeNamed("gitaly-2").voting_upstream.get(),
                                        f.NodeNamed("gitaly-3").voting_upstream.get()};
  expect_that(secondaries == voting, "each voter over its backchannel");

  f.metadata.push_back({"gitaly-route-repository-accessor-policy", "primary-only"});
  route = f.Decide("/gitaly.RepositoryService/CalculateChecksum", Exists("default", "tx.git"));
  assert_status_ok(route.status());
  expect_that(route->upstream == f.NodeNamed("gitaly-1").upstream, "a read: the plain connection");
  expect_that(route->secondaries.empty(), "a read has no voters");
  route = f.Decide("/gitaly.RepositoryService/RepositorySize", Exists("default", "tx.git"));
  assert_status_ok(route.status());
  expect_that(route->upstream == f.NodeNamed("gitaly-1").upstream, "another read: the plain connection");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(OnlyTransactionalWritesTakeTheBackchannel),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
