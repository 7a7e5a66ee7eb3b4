#include "services/repository_exists_service.h"

#include <grpcpp/impl/codegen/method_handler.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>

#include <string>
#include <vector>

#include "common/quote.h"
#include "coordinator/request_paths.h"
#include "wire/rewriter.h"

namespace praefect::services {
namespace {

constexpr std::string_view kMethod = "/gitaly.RepositoryService/RepositoryExists";

grpc::Status ToGrpc(const Status& st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message());
}

}  // namespace

RepositoryExistsService::RepositoryExistsService(const nodes::NodeSet* nodes, datastore::Datastore* store,
                                                 Authenticator authenticate)
    : nodes_(nodes), store_(store), authenticate_(std::move(authenticate)) {
  AddMethod(new grpc::internal::RpcServiceMethod(
      kMethod.data(), grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<RepositoryExistsService, grpc::ByteBuffer, grpc::ByteBuffer>(
          [](RepositoryExistsService* service, grpc::ServerContext* ctx, const grpc::ByteBuffer* req,
             grpc::ByteBuffer* resp) { return service->RepositoryExists(ctx, req, resp); },
          this)));
}

grpc::Status RepositoryExistsService::RepositoryExists(grpc::ServerContext* ctx, const grpc::ByteBuffer* req,
                                                       grpc::ByteBuffer* resp) {
  if (Status st = authenticate_(*ctx); !st.ok()) return ToGrpc(st);
  grpc::Slice flat;
  if (!req->DumpToSingleSlice(&flat).ok())
    return ToGrpc(Internal(std::string(kMethod) + ": cannot read the request bytes"));
  const std::string_view message(reinterpret_cast<const char*>(flat.begin()), flat.size());
  static const std::vector<uint32_t> kRepositoryField = {1};
  auto repo = wire::ReadRepository(message, kRepositoryField);
  if (!repo.ok()) return ToGrpc(repo.status());
  if (Status st = coordinator::ValidateTarget(kMethod, *repo); !st.ok()) return ToGrpc(st);
  if (nodes_->Find(repo->storage_name) == nullptr)
    return ToGrpc(InvalidArgument("virtual storage " + QuoteForMessage(repo->storage_name) + " does not exist (" +
                                  std::string(kMethod) + "): use one of the virtual storages in praefect's config.toml"));
  auto found = store_->GetRepository(repo->storage_name, repo->relative_path);
  if (!found.ok()) return ToGrpc(found.status());
  gitaly::RepositoryExistsResponse answer;
  answer.set_exists(found->has_value());
  std::string bytes = answer.SerializeAsString();
  grpc::Slice slice(bytes);
  *resp = grpc::ByteBuffer(&slice, 1);
  return grpc::Status::OK;
}

}  // namespace praefect::services
