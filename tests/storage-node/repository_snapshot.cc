#include <memory>

#include "fs_util.h"
#include "repository_service.h"

namespace praefect::storagenode {

// Gitaly's snapshot: a tar of HEAD, packed-refs, refs/, branches/ and
// objects/ (no config, no hooks), streamed in 128 KiB messages.
grpc::Status RepositoryServiceImpl::GetSnapshot(grpc::ServerContext* ctx, const gitaly::GetSnapshotRequest* req,
                                                grpc::ServerWriter<gitaly::GetSnapshotResponse>* writer) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  std::vector<std::string> argv = {"tar", "-c", "-f", "-", "-C", *path, "--"};
  for (const char* entry : {"HEAD", "packed-refs", "refs", "branches", "objects"}) {
    if (PathExists(*path + "/" + entry)) argv.push_back(entry);
  }
  auto child = ChildProcess::Spawn(argv, GitEnvironment(deps_->git), "");
  if (!child.ok()) return ToGrpc(child.status());
  std::string buf(128 * 1024, '\0');
  gitaly::GetSnapshotResponse msg;
  for (;;) {
    size_t n = (*child)->ReadFull(buf.data(), buf.size());
    if (n == 0) break;
    msg.set_data(buf.data(), n);
    if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "GetSnapshot: client went away");
  }
  GitResult result = (*child)->Wait();
  // tar exits 1 when a file changed while it was read (a concurrent write);
  // the archive is still complete for what it holds.
  if (result.exit_code > 1) return ToGrpc(Internal("GetSnapshot: tar failed: " + result.err));
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
