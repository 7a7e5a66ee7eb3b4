#include "repository_service.h"

#include <stdio.h>

#include <cerrno>
#include <cstring>

#include "fs_util.h"
#include "log/log.h"
#include "transactional_git.h"

namespace praefect::storagenode {

RepositoryServiceImpl::RepositoryServiceImpl(const NodeDeps* deps) : deps_(deps) {
  // grpc::Service::AddMethod is what the generated constructor uses for its
  // own methods; the server routes on the full method name, so this method
  // is served exactly like the generated ones, and UNIMPLEMENTED stays the
  // answer for every method no one overrides.
  AddMethod(new grpc::internal::RpcServiceMethod(
      "/gitaly.RepositoryService/RemoveRepository", grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<RepositoryServiceImpl, gitaly::RemoveRepositoryRequest,
                                           gitaly::RemoveRepositoryResponse, google::protobuf::MessageLite,
                                           google::protobuf::MessageLite>(
          [](RepositoryServiceImpl* service, grpc::ServerContext* ctx, const gitaly::RemoveRepositoryRequest* req,
             gitaly::RemoveRepositoryResponse* resp) { return service->RemoveRepository(ctx, req, resp); },
          this)));
  AddMethod(new grpc::internal::RpcServiceMethod(
      "/gitaly.RepositoryService/ReplicateRepository", grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<RepositoryServiceImpl, gitaly::ReplicateRepositoryRequest,
                                           gitaly::ReplicateRepositoryResponse, google::protobuf::MessageLite,
                                           google::protobuf::MessageLite>(
          [](RepositoryServiceImpl* service, grpc::ServerContext* ctx,
             const gitaly::ReplicateRepositoryRequest* req, gitaly::ReplicateRepositoryResponse* resp) {
            return service->ReplicateRepository(ctx, req, resp);
          },
          this)));
}

grpc::Status RepositoryServiceImpl::RepositoryExists(grpc::ServerContext* ctx,
                                                     const gitaly::RepositoryExistsRequest* req,
                                                     gitaly::RepositoryExistsResponse* resp) {
  auto path = RepoPathFor(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  resp->set_exists(IsGitDirectory(*path));
  return grpc::Status::OK;
}

grpc::Status RepositoryServiceImpl::CreateRepository(grpc::ServerContext* ctx,
                                                     const gitaly::CreateRepositoryRequest* req,
                                                     gitaly::CreateRepositoryResponse*) {
  auto path = RepoPathFor(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  // Current Gitaly refuses to create over anything that exists.
  if (PathExists(*path))
    return ToGrpc(Status(StatusCode::kAlreadyExists, "creating repository: repository exists already"));
  auto storage = deps_->locator->StoragePath(req->repository().storage_name());
  if (!storage.ok()) return ToGrpc(storage.status());
  auto tx = BeginTransaction(deps_->transactions, *ctx);
  if (!tx.ok()) return ToGrpc(tx.status());
  // Initialise in the storage's scratch directory and rename into place: a
  // crash leaves either no repository or a complete one.
  auto tmp = MakeTempDir(*storage, "create");
  if (!tmp.ok()) return ToGrpc(tmp.status());
  std::string staged = *tmp + "/repo.git";
  auto init = RunProgram(deps_->git, {deps_->git.git_binary, "init", "--bare", "--quiet", staged});
  if (!init.ok() || init->exit_code != 0) {
    (void)RemoveTree(*tmp);
    return ToGrpc(Internal("creating repository: git init: " + (init.ok() ? init->err : init.status().message())));
  }
  Status moved = PublishRepository(*deps_, tx->get(), staged, *path, "creating repository",
                                   "creating repository: repository exists already");
  (void)RemoveTree(*tmp);
  return ToGrpc(moved);
}

grpc::Status RepositoryServiceImpl::RemoveRepository(grpc::ServerContext* ctx,
                                                     const gitaly::RemoveRepositoryRequest* req,
                                                     gitaly::RemoveRepositoryResponse*) {
  auto path = RepoPathFor(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (!PathExists(*path)) return ToGrpc(NotFound("repository does not exist"));
  auto storage = deps_->locator->StoragePath(req->repository().storage_name());
  if (!storage.ok()) return ToGrpc(storage.status());
  // Move the repository out of sight in one rename, then delete at leisure:
  // readers never see a half-deleted repository.
  auto tmp = MakeTempDir(*storage, "remove");
  if (!tmp.ok()) return ToGrpc(tmp.status());
  std::string doomed = *tmp + "/repo.git";
  if (rename(path->c_str(), doomed.c_str()) != 0) {
    int err = errno;
    (void)RemoveTree(*tmp);
    if (err == ENOENT) return ToGrpc(NotFound("repository does not exist"));
    return ToGrpc(Internal("removing repository: " + std::string(std::strerror(err))));
  }
  SyncDir(Dirname(*path));
  if (Status st = RemoveTree(*tmp); !st.ok()) log::Warn("removing a deleted repository", {{"error", st.message()}});
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
