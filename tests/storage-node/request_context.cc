#include "request_context.h"

#include <sys/stat.h>

#include <chrono>

#include "auth/token.h"
#include "log/log.h"

namespace praefect::storagenode {

Status Authorize(const NodeDeps& deps, const grpc::ServerContext& ctx) {
  if (deps.auth_token.empty()) return Status::Ok();
  const auto& md = ctx.client_metadata();
  auto it = md.find(std::string(auth::kAuthorizationMetadataKey));
  std::string value = it == md.end() ? std::string() : std::string(it->second.data(), it->second.size());
  Status st = auth::VerifyV2(value, deps.auth_token, std::chrono::system_clock::now());
  if (!st.ok() && deps.auth_transitioning) {
    log::Warn("unauthenticated call let through: auth.transitioning is set",
              {{"error", st.message()}});
    return Status::Ok();
  }
  return st;
}

StatusOr<std::string> RepoPathFor(const NodeDeps& deps, const grpc::ServerContext& ctx,
                                  const gitaly::Repository* repo, bool has_repo) {
  if (Status st = Authorize(deps, ctx); !st.ok()) return st;
  if (!has_repo) return InvalidArgument("empty Repository");
  return deps.locator->Locate(*repo);
}

bool IsGitDirectory(const std::string& path) {
  struct stat st;
  return stat((path + "/HEAD").c_str(), &st) == 0 && stat((path + "/objects").c_str(), &st) == 0 &&
         S_ISDIR(st.st_mode) && stat((path + "/refs").c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

StatusOr<std::string> LocateExistingRepo(const NodeDeps& deps, const gitaly::Repository* repo, bool has_repo) {
  if (!has_repo) return InvalidArgument("empty Repository");
  auto path = deps.locator->Locate(*repo);
  if (!path.ok()) return path;
  if (!IsGitDirectory(*path))
    return NotFound("GetRepoPath: not a git repository: \"" + repo->relative_path() + "\" in storage \"" +
                    repo->storage_name() + "\"");
  return path;
}

StatusOr<std::string> ExistingRepoPath(const NodeDeps& deps, const grpc::ServerContext& ctx,
                                       const gitaly::Repository* repo, bool has_repo) {
  if (Status st = Authorize(deps, ctx); !st.ok()) return st;
  return LocateExistingRepo(deps, repo, has_repo);
}

}  // namespace praefect::storagenode
