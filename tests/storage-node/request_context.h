#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "common/status_or.h"
#include "git_command.h"
#include "shared.pb.h"
#include "storage_locator.h"

namespace praefect::storagenode {

class NodeTransactions;

inline grpc::Status ToGrpc(const Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message());
}

// What every service of the node shares. Immutable after start, so
// thread-safe; the objects pointed to must outlive the services.
struct NodeDeps {
  const StorageRepoLocator* locator;
  GitEnv git;
  std::string auth_token;
  bool auth_transitioning = false;
  // Reference transactions (call_transaction.h); null: calls that carry a
  // transaction are refused.
  const NodeTransactions* transactions = nullptr;
};

// Checks the v2 token of a call (a no-op without [auth] token; in
// transitioning mode a failure is logged and the call proceeds).
[[nodiscard]] Status Authorize(const NodeDeps& deps, const grpc::ServerContext& ctx);

// Authorizes the call and resolves its repository, which must be present.
[[nodiscard]] StatusOr<std::string> RepoPathFor(const NodeDeps& deps, const grpc::ServerContext& ctx,
                                                const gitaly::Repository* repo, bool has_repo);

// True when `path` looks like a git repository (HEAD, objects/, refs/), the
// test Gitaly applies before it runs git.
bool IsGitDirectory(const std::string& path);

// Resolves a repository that must be present and exist (INVALID_ARGUMENT,
// NOT_FOUND otherwise), for a call that was already authorized.
[[nodiscard]] StatusOr<std::string> LocateExistingRepo(const NodeDeps& deps, const gitaly::Repository* repo,
                                                       bool has_repo);

// As RepoPathFor, and NOT_FOUND when the repository does not exist.
[[nodiscard]] StatusOr<std::string> ExistingRepoPath(const NodeDeps& deps, const grpc::ServerContext& ctx,
                                                     const gitaly::Repository* repo, bool has_repo);

}  // namespace praefect::storagenode
