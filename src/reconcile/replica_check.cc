// The verifier's check of a replica on its node (verifier.h,
// NodeExistenceCheck): Gitaly's RepositoryExists on the node's own storage
// name and the replica's path there.
#include "nodes/node_call.h"
#include "reconcile/verifier.h"
#include "repository-service.pb.h"

namespace praefect::reconcile {

ExistenceCheck NodeExistenceCheck(const nodes::NodeSet* nodes) {
  return [nodes](const datastore::VerificationJob& job, std::chrono::milliseconds timeout,
                 const std::atomic<bool>* abandon) -> StatusOr<bool> {
    const nodes::VirtualStorage* vs = nodes->Find(job.virtual_storage);
    const nodes::Node* node = vs == nullptr ? nullptr : vs->FindNode(job.storage);
    if (node == nullptr)
      return FailedPrecondition("no connection to storage \"" + job.storage + "\" of virtual storage \"" +
                                job.virtual_storage + "\": it is not in this praefect's configuration");
    gitaly::RepositoryExistsRequest request;
    request.mutable_repository()->set_storage_name(job.storage);
    request.mutable_repository()->set_relative_path(job.replica_path);
    nodes::NodeAnswer answer = nodes::CallNodeForAnswer(*node, "/gitaly.RepositoryService/RepositoryExists",
                                                        request.SerializeAsString(), timeout, abandon);
    if (!answer.status.ok())
      return Status(static_cast<StatusCode>(answer.status.error_code()),
                    "RepositoryExists on " + node->Label() + ": " + answer.status.error_message());
    gitaly::RepositoryExistsResponse response;
    if (!response.ParseFromString(answer.response))
      return Internal("RepositoryExists on " + node->Label() + " answered with a message that does not parse");
    return response.exists();
  };
}

}  // namespace praefect::reconcile
