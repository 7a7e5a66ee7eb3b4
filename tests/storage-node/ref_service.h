#pragma once

#include "ref.grpc.pb.h"
#include "request_context.h"

namespace praefect::storagenode {

// gitaly.RefService (the subset the node serves). Thread-safe. `deps` must
// outlive the service.
class RefServiceImpl final : public gitaly::RefService::Service {
 public:
  explicit RefServiceImpl(const NodeDeps* deps) : deps_(deps) {}

  grpc::Status FindDefaultBranchName(grpc::ServerContext* ctx, const gitaly::FindDefaultBranchNameRequest* req,
                                     gitaly::FindDefaultBranchNameResponse* resp) override;
  grpc::Status FindAllBranchNames(grpc::ServerContext* ctx, const gitaly::FindAllBranchNamesRequest* req,
                                  grpc::ServerWriter<gitaly::FindAllBranchNamesResponse>* writer) override;
  grpc::Status RefExists(grpc::ServerContext* ctx, const gitaly::RefExistsRequest* req,
                         gitaly::RefExistsResponse* resp) override;
  grpc::Status FindBranch(grpc::ServerContext* ctx, const gitaly::FindBranchRequest* req,
                          gitaly::FindBranchResponse* resp) override;
  grpc::Status DeleteRefs(grpc::ServerContext* ctx, const gitaly::DeleteRefsRequest* req,
                          gitaly::DeleteRefsResponse* resp) override;

  // Names per FindAllBranchNames message.
  static constexpr int kNamesPerMessage = 20;

 private:
  // Lines of `git for-each-ref --format=<format> <patterns>`.
  StatusOr<std::vector<std::string>> ForEachRef(const std::string& repo, const std::string& format,
                                                const std::vector<std::string>& patterns) const;
  const NodeDeps* deps_;
};

}  // namespace praefect::storagenode
