#pragma once

#include <chrono>

#include "common/status_or.h"
#include "datastore/datastore.h"
#include "nodes/node_set.h"
#include "praefect/praefect.pb.h"

// gitaly.PraefectInfoService/RepositoryReplicas: the checksum of the
// repository on its primary and on each assigned secondary, from the nodes
// themselves (RepositoryService/CalculateChecksum on the replica path).
namespace praefect::services {

// NOT_FOUND when the repository is not registered; a node's error is
// returned naming the node. The nodes are asked in parallel, each bounded by
// `node_timeout`. Blocks: call it off the data plane's loops.
StatusOr<gitaly::RepositoryReplicasResponse> AnswerRepositoryReplicas(const nodes::NodeSet& nodes,
                                                                      datastore::Datastore& store,
                                                                      const gitaly::RepositoryReplicasRequest& request,
                                                                      std::chrono::milliseconds node_timeout);

}  // namespace praefect::services
