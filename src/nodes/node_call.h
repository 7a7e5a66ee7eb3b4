#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/support/status.h>

#include "nodes/node_set.h"

// praefect's own calls to a node, off the data path (replication jobs, the
// cleanup of a creation that could not be recorded, background
// verification): one unary call with raw request bytes, signed with the
// node's token, waited for.
namespace praefect::nodes {

// Calls `method` on `node` with `request` and waits at most `timeout`.
// `metadata` is added as is. Blocks: call it off gRPC's threads.
grpc::Status CallNode(const Node& node, const std::string& method, const std::string& request,
                      std::chrono::milliseconds timeout,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

// What a call answered: its status and, when OK, the response message's
// bytes.
struct NodeAnswer {
  grpc::Status status;
  std::string response;
};

// As CallNode, keeping the response. When `abandon` is set and becomes true
// (a daemon stopping), the call is cancelled within about 100 ms
// (CANCELLED) instead of running to its deadline.
NodeAnswer CallNodeForAnswer(const Node& node, const std::string& method, const std::string& request,
                             std::chrono::milliseconds timeout, const std::atomic<bool>* abandon = nullptr,
                             const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace praefect::nodes
