#include "transactional_git.h"

#include <stdio.h>

#include <cerrno>
#include <cstring>

#include "fs_util.h"
#include "log/log.h"

namespace praefect::storagenode {

StatusOr<GitResult> RunGitUpdatingRefs(const NodeDeps& deps, const CallTransaction* tx, const std::string& repo_path,
                                       const std::vector<std::string>& args, const std::string& input) {
  if (tx == nullptr) return RunGit(deps.git, repo_path, args, input);
  std::vector<std::string> with_hooks;
  for (const std::string& config : tx->GitConfig()) {
    with_hooks.push_back("-c");
    with_hooks.push_back(config);
  }
  with_hooks.insert(with_hooks.end(), args.begin(), args.end());
  return RunProgram(deps.git, GitArgv(deps.git, repo_path, with_hooks), input, tx->HookEnv(repo_path));
}

StatusOr<std::string> RepositoryVoteData(const GitEnv& git, const std::string& repo_path) {
  auto head = RunGit(git, repo_path, {"symbolic-ref", "-q", "HEAD"});
  if (!head.ok()) return head.status();
  auto refs = RunGit(git, repo_path, {"for-each-ref", "--format=%(objectname) %(refname)"});
  if (!refs.ok()) return refs.status();
  if (refs->exit_code != 0)
    return Internal("listing the refs of the new repository for its vote: " + TrimTrailing(refs->err));
  // A detached HEAD (exit 1) votes as an empty target.
  return "HEAD " + TrimTrailing(head->exit_code == 0 ? head->out : "") + "\n" + refs->out;
}

Status PublishRepository(const NodeDeps& deps, CallTransaction* tx, const std::string& staged,
                         const std::string& path, const std::string& what, const std::string& exists_message) {
  if (tx == nullptr) return MoveIntoPlace(staged, path, what, exists_message);
  auto data = RepositoryVoteData(deps.git, staged);
  if (!data.ok()) return Status(data.status().code(), what + ": " + data.status().message());
  if (Status st = tx->VoteOn(*data, gitaly::VoteTransactionRequest::PREPARED_PHASE); !st.ok())
    return Status(st.code(), what + ": " + st.message() + "; the repository was not created");
  if (Status st = MoveIntoPlace(staged, path, what, exists_message); !st.ok()) return st;
  Status st = tx->VoteOn(*data, gitaly::VoteTransactionRequest::COMMITTED_PHASE);
  if (st.ok()) return st;
  // The creation is undone in one rename: readers saw a complete repository
  // or none, and the replicas that committed are the ones praefect records.
  if (rename(path.c_str(), staged.c_str()) != 0) {
    log::Error("cannot remove a repository whose creation was not committed; remove it by hand",
               {{"path", path}, {"error", std::strerror(errno)}});
    return Status(st.code(), what + ": " + st.message() + "; the repository at " + path +
                                 " could not be removed again: " + std::strerror(errno));
  }
  SyncDir(Dirname(path));
  return Status(st.code(), what + ": " + st.message() + "; the repository was removed again");
}

grpc::Status FinishReceivePack(CallTransaction* tx, const grpc::Status& git_status, std::string_view method) {
  if (tx == nullptr) return git_status;
  if (!git_status.ok()) {
    // git dies ("ref updates aborted by hook") when a prepared vote fails:
    // the transaction is the cause worth telling.
    Status failure = tx->failure();
    if (failure.ok()) return git_status;
    return grpc::Status(static_cast<grpc::StatusCode>(failure.code()),
                        std::string(method) + ": " + failure.message() + " (git: " + git_status.error_message() + ")");
  }
  Status st = tx->VoteHash(std::string(20, '\0'), gitaly::VoteTransactionRequest::COMMITTED_PHASE);
  if (st.ok() || IsStopped(st)) return grpc::Status::OK;
  return grpc::Status(grpc::StatusCode::ABORTED, std::string(method) + ": final transactional vote: " + st.message());
}

Status TransactionFailure(const CallTransaction* tx, std::string_view what) {
  if (tx == nullptr) return Status::Ok();
  Status failure = tx->failure();
  if (failure.ok()) return failure;
  return Status(failure.code(), std::string(what) + ": " + failure.message());
}

}  // namespace praefect::storagenode
