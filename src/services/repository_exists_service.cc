#include "services/repository_exists_service.h"

#include <grpcpp/impl/codegen/method_handler.h>
#include <grpcpp/impl/codegen/rpc_service_method.h>

namespace praefect::services {
namespace {

grpc::Status ToGrpc(const Status& st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message());
}

}  // namespace

RepositoryExistsService::RepositoryExistsService(const nodes::NodeSet* nodes, datastore::Datastore* store,
                                                 Authenticator authenticate)
    : nodes_(nodes), store_(store), authenticate_(std::move(authenticate)) {
  AddMethod(new grpc::internal::RpcServiceMethod(
      "/gitaly.RepositoryService/RepositoryExists", grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<RepositoryExistsService, gitaly::RepositoryExistsRequest,
                                           gitaly::RepositoryExistsResponse, google::protobuf::MessageLite,
                                           google::protobuf::MessageLite>(
          [](RepositoryExistsService* service, grpc::ServerContext* ctx, const gitaly::RepositoryExistsRequest* req,
             gitaly::RepositoryExistsResponse* resp) { return service->RepositoryExists(ctx, req, resp); },
          this)));
}

grpc::Status RepositoryExistsService::RepositoryExists(grpc::ServerContext* ctx,
                                                       const gitaly::RepositoryExistsRequest* req,
                                                       gitaly::RepositoryExistsResponse* resp) {
  if (Status st = authenticate_(*ctx); !st.ok()) return ToGrpc(st);
  if (!req->has_repository() || req->repository().storage_name().empty())
    return ToGrpc(InvalidArgument("RepositoryExists: the request names no repository (empty Repository or "
                                  "storage_name)"));
  const auto& repo = req->repository();
  if (nodes_->Find(repo.storage_name()) == nullptr)
    return ToGrpc(InvalidArgument("virtual storage \"" + repo.storage_name() +
                                  "\" does not exist (/gitaly.RepositoryService/RepositoryExists): use one of the "
                                  "virtual storages in praefect's config.toml"));
  auto found = store_->GetRepository(repo.storage_name(), repo.relative_path());
  if (!found.ok()) return ToGrpc(found.status());
  resp->set_exists(found->has_value());
  return grpc::Status::OK;
}

}  // namespace praefect::services
