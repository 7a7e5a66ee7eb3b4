#include "internal_service.h"

#include <sys/stat.h>

#include <filesystem>

namespace praefect::storagenode {
namespace {

namespace fs = std::filesystem;

// Gitaly's storage.IsGitDirectory: objects/ and refs/ directories and a
// HEAD file.
bool IsGitDirectory(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "objects", ec) && fs::is_directory(dir / "refs", ec) &&
         fs::exists(dir / "HEAD", ec);
}

}  // namespace

grpc::Status InternalServiceImpl::WalkRepos(grpc::ServerContext* ctx, const gitaly::WalkReposRequest* req,
                                            grpc::ServerWriter<gitaly::WalkReposResponse>* writer) {
  if (Status st = Authorize(*deps_, *ctx); !st.ok()) return ToGrpc(st);
  const StorageConfig* storage = nullptr;
  for (const auto& s : storages_)
    if (s.name == req->storage_name()) storage = &s;
  if (storage == nullptr)
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "storage not found: \"" + req->storage_name() + "\"");
  const fs::path root(storage->path);
  std::error_code ec;
  fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
  if (ec) return grpc::Status(grpc::StatusCode::INTERNAL, "walking " + storage->path + ": " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return grpc::Status(grpc::StatusCode::INTERNAL, "walking " + storage->path + ": " + ec.message());
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    const fs::path& path = it->path();
    if (!it->is_directory(ec)) continue;
    if (it.depth() == 0 && path.filename().string().rfind("+gitaly", 0) == 0) {
      it.disable_recursion_pending();
      continue;
    }
    if (!IsGitDirectory(path)) continue;
    it.disable_recursion_pending();
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) continue;  // removed meanwhile
    gitaly::WalkReposResponse response;
    response.set_relative_path(path.lexically_relative(root).string());
    response.mutable_modification_time()->set_seconds(st.st_mtim.tv_sec);
    response.mutable_modification_time()->set_nanos(static_cast<int32_t>(st.st_mtim.tv_nsec));
    if (!writer->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
  }
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
