#pragma once

#include "praefect/gitaly_newer.pb.h"
#include "repository-service.grpc.pb.h"
#include "gitaly_servers.h"
#include "request_context.h"

namespace praefect::storagenode {

class CallTransaction;

// gitaly.RepositoryService over bare repositories on the node's storages.
// RemoveRepository and ReplicateRepository are newer than the packaged
// protos: the constructor adds them as a hand-built method of this same service (as the generated code adds
// its own methods), with the wire-compatible messages of
// proto/praefect/gitaly_newer.proto. Thread-safe (sync handlers; git locks
// serialise writers). `deps` must outlive the service.
class RepositoryServiceImpl final : public gitaly::RepositoryService::Service {
 public:
  explicit RepositoryServiceImpl(const NodeDeps* deps);

  grpc::Status RepositoryExists(grpc::ServerContext* ctx, const gitaly::RepositoryExistsRequest* req,
                                gitaly::RepositoryExistsResponse* resp) override;
  grpc::Status CreateRepository(grpc::ServerContext* ctx, const gitaly::CreateRepositoryRequest* req,
                                gitaly::CreateRepositoryResponse* resp) override;
  grpc::Status RemoveRepository(grpc::ServerContext* ctx, const gitaly::RemoveRepositoryRequest* req,
                                gitaly::RemoveRepositoryResponse* resp);
  // Newer than the packaged protos, added by hand as RemoveRepository.
  grpc::Status ReplicateRepository(grpc::ServerContext* ctx, const gitaly::ReplicateRepositoryRequest* req,
                                   gitaly::ReplicateRepositoryResponse* resp);
  grpc::Status CalculateChecksum(grpc::ServerContext* ctx, const gitaly::CalculateChecksumRequest* req,
                                 gitaly::CalculateChecksumResponse* resp) override;
  grpc::Status WriteRef(grpc::ServerContext* ctx, const gitaly::WriteRefRequest* req,
                        gitaly::WriteRefResponse* resp) override;
  grpc::Status GarbageCollect(grpc::ServerContext* ctx, const gitaly::GarbageCollectRequest* req,
                              gitaly::GarbageCollectResponse* resp) override;
  grpc::Status RepackFull(grpc::ServerContext* ctx, const gitaly::RepackFullRequest* req,
                          gitaly::RepackFullResponse* resp) override;
  grpc::Status RepackIncremental(grpc::ServerContext* ctx, const gitaly::RepackIncrementalRequest* req,
                                 gitaly::RepackIncrementalResponse* resp) override;
  grpc::Status Cleanup(grpc::ServerContext* ctx, const gitaly::CleanupRequest* req,
                       gitaly::CleanupResponse* resp) override;
  grpc::Status RepositorySize(grpc::ServerContext* ctx, const gitaly::RepositorySizeRequest* req,
                              gitaly::RepositorySizeResponse* resp) override;
  grpc::Status GetSnapshot(grpc::ServerContext* ctx, const gitaly::GetSnapshotRequest* req,
                           grpc::ServerWriter<gitaly::GetSnapshotResponse>* writer) override;
  grpc::Status CreateRepositoryFromBundle(grpc::ServerContext* ctx,
                                          grpc::ServerReader<gitaly::CreateRepositoryFromBundleRequest>* reader,
                                          gitaly::CreateRepositoryFromBundleResponse* resp) override;
  grpc::Status CreateRepositoryFromSnapshot(grpc::ServerContext* ctx,
                                            const gitaly::CreateRepositoryFromSnapshotRequest* req,
                                            gitaly::CreateRepositoryFromSnapshotResponse* resp) override;

 private:
  // Runs a maintenance git command in an existing repository.
  grpc::Status Maintain(grpc::ServerContext* ctx, const gitaly::Repository* repo, bool has_repo,
                        const std::vector<std::string>& args, const char* rpc);

  // WriteRef of HEAD; `tx` may be null.
  grpc::Status WriteHead(const std::string& path, const std::string& target, CallTransaction* tx);

  // ReplicateRepository's fetch into an existing repository.
  Status PullFrom(const std::string& repo_path, const gitaly::Repository& source, const ServerAddress& server);

  const NodeDeps* deps_;
};

}  // namespace praefect::storagenode
