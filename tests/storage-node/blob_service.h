#pragma once

#include "blob.grpc.pb.h"
#include "request_context.h"

namespace praefect::storagenode {

// gitaly.BlobService: GetBlob streams from `git cat-file --batch` in 128 KiB
// messages (Gitaly's streamio buffer size), never holding a blob whole.
// Thread-safe. `deps` must outlive the service.
class BlobServiceImpl final : public gitaly::BlobService::Service {
 public:
  explicit BlobServiceImpl(const NodeDeps* deps) : deps_(deps) {}

  grpc::Status GetBlob(grpc::ServerContext* ctx, const gitaly::GetBlobRequest* req,
                       grpc::ServerWriter<gitaly::GetBlobResponse>* writer) override;

  static constexpr size_t kChunkSize = 128 * 1024;

 private:
  const NodeDeps* deps_;
};

}  // namespace praefect::storagenode
