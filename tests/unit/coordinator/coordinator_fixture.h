// The coordinator unit tests' shared fixture: a three-node virtual storage
// (and a one-node one), a Coordinator over it, and request helpers.
#pragma once

#include <map>
#include <set>

#include "auth/token.h"
#include "config/load.h"
#include "coordinator/coordinator.h"
#include "datastore/memory_datastore.h"
#include "namespace.pb.h"
#include "repository-service.pb.h"
#include "test_support.h"
#include "transactions/manager.h"

namespace coordinator_test {

using praefect::StatusCode;
using praefect::coordinator::Coordinator;
using praefect::coordinator::PrimaryRouter;
using Metadata = praefect::http2::HeaderList;

inline constexpr char kConfig[] = R"(
listen_addr = "127.0.0.1:2305"
[auth]
token = "client-secret"
[[virtual_storage]]
name = "default"
[[virtual_storage.node]]
storage = "gitaly-1"
address = "tcp://127.0.0.1:1"
token = "token-1"
[[virtual_storage.node]]
storage = "gitaly-2"
address = "tcp://127.0.0.1:2"
token = "token-2"
primary = true
[[virtual_storage.node]]
storage = "gitaly-3"
address = "unix:/nonexistent/gitaly-3.sock"
[[virtual_storage]]
name = "other"
[[virtual_storage.node]]
storage = "other-1"
address = "tcp://127.0.0.1:3"
)";

inline const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));

struct Fixture {
  // `transactions`: [backchannel] enabled, with this manager (the nodes'
  // backchannel connections are never dialed here).
  explicit Fixture(bool transitioning = false, praefect::datastore::Datastore* store = nullptr,
                   bool per_repository = true, praefect::datastore::RepositoryCache* cache = nullptr,
                   praefect::transactions::Manager* transactions = nullptr) {
    auto loaded = praefect::config::LoadString(kConfig, "coordinator_test.toml",
                                               praefect::config::Environment{});
    expect_that(loaded.ok(), "test config loads");
    config = *loaded.config;
    auto created_registry = praefect::protoregistry::Registry::Create({});
    expect_that(created_registry.ok(), "registry");
    registry = std::move(*created_registry);
    praefect::nodes::MakeBackchannel make_backchannel;
    if (transactions != nullptr) {
      make_backchannel = [](const std::string&) -> praefect::StatusOr<std::unique_ptr<praefect::http2::SecureLayer>> {
        return praefect::Unavailable("not dialed in this test");
      };
    }
    auto created_nodes =
        praefect::nodes::NodeSet::Create(config, grpc::ChannelArguments(), nullptr, make_backchannel);
    expect_that(created_nodes.ok(), "node set");
    nodes = std::move(*created_nodes);
    praefect::coordinator::Options options;
    options.auth_token = config.auth.token;
    options.auth_transitioning = transitioning;
    options.now = [] { return kNow; };
    options.transactions = transactions;
    if (store != nullptr) {
      praefect::routing::Options routing_options;
      routing_options.per_repository = per_repository;
      repository_router =
          std::make_unique<praefect::routing::RepositoryRouter>(store, nullptr, routing_options);
      options.repository_router = repository_router.get();
      options.cache = cache;
    }
    coordinator = std::make_unique<Coordinator>(registry.get(), nodes.get(), &router, nullptr, options, store);
    bearer = praefect::auth::BearerV2("client-secret", kNow);
    metadata.push_back({"authorization", bearer});
  }

  praefect::StatusOr<praefect::http2::Route> Decide(const std::string& method, const std::string& message) {
    praefect::http2::CallInfo call;
    call.method = method;
    call.metadata = &metadata;
    call.first_message = message;
    return coordinator->Decide(call);
  }

  praefect::nodes::Node& NodeNamed(const std::string& storage) {
    for (const auto& vs : nodes->virtual_storages())
      for (const auto& n : vs.nodes)
        if (n->storage == storage) return *n;
    fail_msg("no node %s", storage.c_str());
    abort();
  }

  praefect::config::Config config;
  std::unique_ptr<praefect::protoregistry::Registry> registry;
  std::unique_ptr<praefect::nodes::NodeSet> nodes;
  PrimaryRouter router;
  std::unique_ptr<praefect::routing::RepositoryRouter> repository_router;
  std::unique_ptr<Coordinator> coordinator;
  std::string bearer;
  Metadata metadata;
};

inline std::string Exists(const std::string& storage, const std::string& path) {
  gitaly::RepositoryExistsRequest req;
  req.mutable_repository()->set_storage_name(storage);
  req.mutable_repository()->set_relative_path(path);
  return req.SerializeAsString();
}

inline std::string Find(const std::vector<std::pair<std::string, std::string>>& md, const std::string& key) {
  for (const auto& [k, v] : md)
    if (k == key) return v;
  return "";
}

inline void SetHealth(Fixture& f, praefect::datastore::MemoryDatastore& store, const std::set<std::string>& healthy) {
  std::vector<praefect::datastore::NodeHealth> checks;
  for (const char* n : {"gitaly-1", "gitaly-2", "gitaly-3"}) {
    f.NodeNamed(n).healthy = healthy.count(n) > 0;
    checks.push_back({"default", n, healthy.count(n) > 0});
  }
  assert_status_ok(store.RecordHealth("praefect-a", checks));
}

inline std::string Primary(praefect::datastore::MemoryDatastore& store, const char* path) {
  return (*store.GetRepository("default", path))->primary;
}

}  // namespace coordinator_test
