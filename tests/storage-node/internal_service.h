#pragma once

#include <vector>

#include "node_config.h"
#include "praefect/internal.grpc.pb.h"
#include "request_context.h"

namespace praefect::storagenode {

// gitaly.InternalGitaly/WalkRepos, as Gitaly answers it: every git
// directory under the storage (not below another one, not under Gitaly's
// own "+gitaly" directory) with its directory's modification time.
// Thread-safe. `deps` must outlive it.
class InternalServiceImpl final : public gitaly::InternalGitaly::Service {
 public:
  InternalServiceImpl(const NodeDeps* deps, std::vector<StorageConfig> storages)
      : deps_(deps), storages_(std::move(storages)) {}

  grpc::Status WalkRepos(grpc::ServerContext* ctx, const gitaly::WalkReposRequest* req,
                         grpc::ServerWriter<gitaly::WalkReposResponse>* writer) override;

 private:
  const NodeDeps* deps_;
  const std::vector<StorageConfig> storages_;
};

}  // namespace praefect::storagenode
