#include "server_service.h"

#include <unistd.h>


#include "common/ntp.h"
#include "filesystem_id.h"
#include "fs_util.h"

#ifndef PRAEFECT_VERSION
#define PRAEFECT_VERSION "0.0.0"
#endif

namespace praefect::storagenode {

std::string DetectGitVersion(const GitEnv& env) {
  auto run = RunProgram(env, {env.git_binary, "--version"});
  if (!run.ok() || run->exit_code != 0) return "";
  // "git version 2.39.5\n"
  std::string v = run->out;
  const std::string prefix = "git version ";
  if (v.rfind(prefix, 0) == 0) v = v.substr(prefix.size());
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

ServerServiceImpl::ServerServiceImpl(const NodeDeps* deps, std::vector<StorageConfig> storages,
                                     std::string git_version)
    : deps_(deps), storages_(std::move(storages)), git_version_(std::move(git_version)) {
  AddMethod(new grpc::internal::RpcServiceMethod(
      "/gitaly.ServerService/ClockSynced", grpc::internal::RpcMethod::NORMAL_RPC,
      new grpc::internal::RpcMethodHandler<ServerServiceImpl, gitaly::ClockSyncedRequest, gitaly::ClockSyncedResponse,
                                           google::protobuf::MessageLite, google::protobuf::MessageLite>(
          [](ServerServiceImpl* service, grpc::ServerContext* ctx, const gitaly::ClockSyncedRequest* req,
             gitaly::ClockSyncedResponse* resp) { return service->ClockSynced(ctx, req, resp); },
          this)));
}

grpc::Status ServerServiceImpl::ClockSynced(grpc::ServerContext* ctx, const gitaly::ClockSyncedRequest* req,
                                            gitaly::ClockSyncedResponse* resp) {
  if (Status st = Authorize(*deps_, *ctx); !st.ok()) return ToGrpc(st);
  std::chrono::nanoseconds threshold = std::chrono::milliseconds(req->drift_threshold_millis());
  if (req->has_drift_threshold())
    threshold = std::chrono::seconds(req->drift_threshold().seconds()) +
                std::chrono::nanoseconds(req->drift_threshold().nanos());
  auto synced = praefect::ClockSynced(req->ntp_host(), threshold, std::chrono::seconds(5));
  if (!synced.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, synced.status().message());
  resp->set_synced(*synced);
  return grpc::Status::OK;
}

grpc::Status ServerServiceImpl::ServerInfo(grpc::ServerContext* ctx, const gitaly::ServerInfoRequest*,
                                           gitaly::ServerInfoResponse* resp) {
  if (Status st = Authorize(*deps_, *ctx); !st.ok()) return ToGrpc(st);
  resp->set_server_version(std::string(PRAEFECT_VERSION) + "-praefect-storage-node");
  resp->set_git_version(git_version_);
  for (const auto& s : storages_) {
    auto* status = resp->add_storage_statuses();
    status->set_storage_name(s.name);
    status->set_readable(access(s.path.c_str(), R_OK | X_OK) == 0);
    status->set_writeable(access(s.path.c_str(), W_OK | X_OK) == 0);
    status->set_fs_type(FilesystemType(s.path));
    auto id = ReadOrCreateFilesystemId(s.path);
    if (id.ok()) status->set_filesystem_id(*id);
  }
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
