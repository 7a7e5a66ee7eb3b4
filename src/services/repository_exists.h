#pragma once

#include <string>
#include <string_view>

#include "common/status_or.h"
#include "datastore/datastore.h"
#include "nodes/node_set.h"

// gitaly.RepositoryService/RepositoryExists as praefect answers it, from the
// datastore: a repository exists when it is registered, as in Praefect.
namespace praefect::services {

// The serialized RepositoryExistsResponse for the request bytes `message`.
// The request is read with the proxy's own reader, so a malformed one is
// INVALID_ARGUMENT, and its path passes the checks of every routed call
// (coordinator/request_paths.h); an unknown virtual storage is
// INVALID_ARGUMENT. Blocks on the datastore: call it off gRPC's threads.
StatusOr<std::string> AnswerRepositoryExists(const nodes::NodeSet& nodes, datastore::Datastore& store,
                                             std::string_view message);

}  // namespace praefect::services
