#include "services/repository_replicas.h"

#include <grpcpp/grpcpp.h>

#include <future>
#include <string>
#include <vector>

#include "auth/token.h"
#include "common/quote.h"
#include "repository-service.grpc.pb.h"

namespace praefect::services {
namespace {

// CalculateChecksum of `replica_path` on `node`.
StatusOr<std::string> Checksum(const nodes::Node& node, const std::string& replica_path,
                               std::chrono::milliseconds timeout) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
  if (std::string token = node.Token(); !token.empty())
    ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                    auth::BearerV2(token, std::chrono::system_clock::now()));
  gitaly::CalculateChecksumRequest req;
  req.mutable_repository()->set_storage_name(node.storage);
  req.mutable_repository()->set_relative_path(replica_path);
  gitaly::CalculateChecksumResponse resp;
  grpc::Status st = gitaly::RepositoryService::NewStub(node.channel)->CalculateChecksum(&ctx, req, &resp);
  if (!st.ok())
    return Status(static_cast<StatusCode>(st.error_code()),
                  node.Label() + ": CalculateChecksum: " + st.error_message());
  return resp.checksum();
}

}  // namespace

StatusOr<gitaly::RepositoryReplicasResponse> AnswerRepositoryReplicas(const nodes::NodeSet& nodes,
                                                                      datastore::Datastore& store,
                                                                      const gitaly::RepositoryReplicasRequest& request,
                                                                      std::chrono::milliseconds node_timeout) {
  const std::string& vs_name = request.repository().storage_name();
  const std::string& relative_path = request.repository().relative_path();
  const nodes::VirtualStorage* vs = nodes.Find(vs_name);
  if (vs == nullptr) return InvalidArgument("unknown virtual storage: " + QuoteForMessage(vs_name));
  auto found = store.GetRepository(vs_name, relative_path);
  if (!found.ok()) return found.status();
  if (!found->has_value())
    return NotFound("repository " + QuoteForMessage(relative_path) + " is not registered in virtual storage " +
                    QuoteForMessage(vs_name));
  const datastore::RepositoryMetadata& meta = **found;
  // The recorded primary; without one (failover disabled, or none elected
  // yet) the configured primary.
  const std::string primary = meta.primary.empty() ? vs->Primary().storage : meta.primary;
  std::vector<const nodes::Node*> targets;
  if (const nodes::Node* node = vs->FindNode(primary)) targets.push_back(node);
  if (targets.empty())
    return FailedPrecondition("the primary of repository " + QuoteForMessage(relative_path) + ", storage " +
                              QuoteForMessage(primary) + ", is not configured in virtual storage " +
                              QuoteForMessage(vs_name));
  for (const auto& node : vs->nodes) {
    if (node->storage != primary && meta.IsAssigned(node->storage)) targets.push_back(node.get());
  }
  std::vector<std::future<StatusOr<std::string>>> sums;
  for (const nodes::Node* node : targets)
    sums.push_back(std::async(std::launch::async, [node, &meta, node_timeout] {
      return Checksum(*node, meta.replica_path, node_timeout);
    }));
  gitaly::RepositoryReplicasResponse resp;
  Status first_error;
  for (size_t i = 0; i < targets.size(); ++i) {
    StatusOr<std::string> sum = sums[i].get();
    if (!sum.ok()) {
      if (first_error.ok()) first_error = sum.status();
      continue;
    }
    auto* details = i == 0 ? resp.mutable_primary() : resp.add_replicas();
    details->mutable_repository()->set_storage_name(targets[i]->storage);
    details->mutable_repository()->set_relative_path(relative_path);
    details->set_checksum(*sum);
  }
  if (!first_error.ok()) return first_error;
  return resp;
}

}  // namespace praefect::services
