#pragma once

#include <string>
#include <vector>

#include "praefect/gitaly_newer.pb.h"
#include "request_context.h"
#include "server.grpc.pb.h"

namespace praefect::storagenode {

// gitaly.ServerService/ServerInfo, and ClockSynced (newer than the
// packaged protos, added by hand as RepositoryService's RemoveRepository).
// Thread-safe. `deps` must outlive it.
class ServerServiceImpl final : public gitaly::ServerService::Service {
 public:
  ServerServiceImpl(const NodeDeps* deps, std::vector<StorageConfig> storages, std::string git_version);

  grpc::Status ServerInfo(grpc::ServerContext* ctx, const gitaly::ServerInfoRequest* req,
                          gitaly::ServerInfoResponse* resp) override;
  // Whether this host's clock is within the request's threshold of its NTP
  // server, as Gitaly answers it.
  grpc::Status ClockSynced(grpc::ServerContext* ctx, const gitaly::ClockSyncedRequest* req,
                           gitaly::ClockSyncedResponse* resp);

 private:
  const NodeDeps* deps_;
  const std::vector<StorageConfig> storages_;
  const std::string git_version_;
};

// The version `git --version` prints ("2.39.5"), or "" when git fails.
std::string DetectGitVersion(const GitEnv& env);

}  // namespace praefect::storagenode
