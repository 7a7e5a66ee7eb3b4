#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/support/status.h>

#include "nodes/node_set.h"

// praefect's own calls to a node, off the data path (replication jobs, the
// cleanup of a creation that could not be recorded): one unary call with
// raw request bytes, signed with the node's token, waited for.
namespace praefect::nodes {

// Calls `method` on `node` with `request` and waits at most `timeout`.
// `metadata` is added as is. Blocks: call it off gRPC's threads.
grpc::Status CallNode(const Node& node, const std::string& method, const std::string& request,
                      std::chrono::milliseconds timeout,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

// The same, keeping the response's bytes in `*response` (when OK).
grpc::Status CallNodeForResponse(const Node& node, const std::string& method, const std::string& request,
                                 std::chrono::milliseconds timeout, std::string* response,
                                 const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace praefect::nodes
