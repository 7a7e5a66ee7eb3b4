#pragma once

#include <string>
#include <vector>

#include "request_context.h"
#include "server.grpc.pb.h"

namespace praefect::storagenode {

// gitaly.ServerService/ServerInfo. Thread-safe. `deps` must outlive it.
class ServerServiceImpl final : public gitaly::ServerService::Service {
 public:
  ServerServiceImpl(const NodeDeps* deps, std::vector<StorageConfig> storages, std::string git_version)
      : deps_(deps), storages_(std::move(storages)), git_version_(std::move(git_version)) {}

  grpc::Status ServerInfo(grpc::ServerContext* ctx, const gitaly::ServerInfoRequest* req,
                          gitaly::ServerInfoResponse* resp) override;

 private:
  const NodeDeps* deps_;
  const std::vector<StorageConfig> storages_;
  const std::string git_version_;
};

// The version `git --version` prints ("2.39.5"), or "" when git fails.
std::string DetectGitVersion(const GitEnv& env);

}  // namespace praefect::storagenode
