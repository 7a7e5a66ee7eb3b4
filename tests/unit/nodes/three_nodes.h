#pragma once

// The cluster the nodes and reconcile tests run against: one virtual storage
// "default" with the nodes gitaly-1, gitaly-2 and gitaly-3 (in that order).
// Their addresses are never dialed (channels connect lazily); a test sets
// each node's `healthy` flag itself with SetHealthy.
//
// Include it after every other header: it includes test_support.h.

#include <initializer_list>
#include <memory>
#include <utility>

#include "config/load.h"
#include "nodes/node_set.h"
#include "test_support.h"

namespace praefect::nodes::testing {

inline constexpr char kThreeNodesToml[] = R"(
listen_addr = "127.0.0.1:2305"
[[virtual_storage]]
name = "default"
[[virtual_storage.node]]
storage = "gitaly-1"
address = "tcp://127.0.0.1:1"
[[virtual_storage.node]]
storage = "gitaly-2"
address = "tcp://127.0.0.1:2"
[[virtual_storage.node]]
storage = "gitaly-3"
address = "tcp://127.0.0.1:3"
)";

// kThreeNodesToml loaded; fails the test if it does not load.
inline config::Config ThreeNodesConfig() {
  auto loaded = config::LoadString(kThreeNodesToml, "three_nodes.toml", config::Environment{});
  expect_that(loaded.ok(), "test config loads");
  return std::move(*loaded.config);
}

// A NodeSet of ThreeNodesConfig(), every node unhealthy.
inline std::unique_ptr<NodeSet> ThreeNodes() {
  auto created = NodeSet::Create(ThreeNodesConfig(), grpc::ChannelArguments());
  expect_that(created.ok(), "node set");
  return std::move(*created);
}

// Marks the nodes of the first virtual storage named in `healthy` healthy
// and every other one unhealthy.
inline void SetHealthy(NodeSet& nodes, std::initializer_list<const char*> healthy) {
  for (const auto& node : nodes.virtual_storages()[0].nodes) {
    bool up = false;
    for (const char* h : healthy) up = up || node->storage == h;
    node->healthy.store(up);
  }
}

}  // namespace praefect::nodes::testing
