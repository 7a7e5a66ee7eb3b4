#include "ref_service.h"

#include <algorithm>

#include "commit_reader.h"
#include "transactional_git.h"

namespace praefect::storagenode {
namespace {

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    if (nl > pos) lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

bool BadRefArgument(const std::string& s) {
  return s.empty() || s[0] == '-' || s.find_first_of(std::string("\n\0", 2)) != std::string::npos;
}

}  // namespace

StatusOr<std::vector<std::string>> RefServiceImpl::ForEachRef(const std::string& repo, const std::string& format,
                                                              const std::vector<std::string>& patterns) const {
  std::vector<std::string> args = {"for-each-ref", "--format=" + format};
  args.insert(args.end(), patterns.begin(), patterns.end());
  auto run = RunGit(deps_->git, repo, args);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) return Internal("git for-each-ref: " + run->err);
  return SplitLines(run->out);
}

grpc::Status RefServiceImpl::FindDefaultBranchName(grpc::ServerContext* ctx,
                                                   const gitaly::FindDefaultBranchNameRequest* req,
                                                   gitaly::FindDefaultBranchNameResponse* resp) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  auto branches = ForEachRef(*path, "%(refname)", {"refs/heads/"});
  if (!branches.ok()) return ToGrpc(branches.status());
  // Gitaly's choice: none → empty; one → it; else HEAD's target when it is a
  // branch, else master, else the first branch in ref order.
  if (branches->empty()) return grpc::Status::OK;
  auto has = [&](const std::string& ref) {
    return std::find(branches->begin(), branches->end(), ref) != branches->end();
  };
  std::string chosen = (*branches)[0];
  if (branches->size() > 1) {
    auto head = RunGit(deps_->git, *path, {"symbolic-ref", "-q", "HEAD"});
    if (!head.ok()) return ToGrpc(head.status());
    std::string target = head->exit_code == 0 ? SplitLines(head->out).front() : "";
    if (!target.empty() && has(target)) chosen = target;
    else if (has("refs/heads/master")) chosen = "refs/heads/master";
  }
  resp->set_name(chosen);
  return grpc::Status::OK;
}

grpc::Status RefServiceImpl::FindAllBranchNames(grpc::ServerContext* ctx,
                                                const gitaly::FindAllBranchNamesRequest* req,
                                                grpc::ServerWriter<gitaly::FindAllBranchNamesResponse>* writer) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  auto branches = ForEachRef(*path, "%(refname)", {"refs/heads/"});
  if (!branches.ok()) return ToGrpc(branches.status());
  gitaly::FindAllBranchNamesResponse msg;
  for (const auto& name : *branches) {
    msg.add_names(name);
    if (msg.names_size() == kNamesPerMessage) {
      if (!writer->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      msg.Clear();
    }
  }
  if (msg.names_size() > 0) writer->Write(msg);
  return grpc::Status::OK;
}

grpc::Status RefServiceImpl::RefExists(grpc::ServerContext* ctx, const gitaly::RefExistsRequest* req,
                                       gitaly::RefExistsResponse* resp) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (req->ref().rfind("refs/", 0) != 0 || BadRefArgument(req->ref()))
    return ToGrpc(InvalidArgument("invalid refname"));
  auto run = RunGit(deps_->git, *path, {"show-ref", "--verify", "--quiet", req->ref()});
  if (!run.ok()) return ToGrpc(run.status());
  if (run->exit_code > 1) return ToGrpc(Internal("RefExists: git show-ref: " + run->err));
  resp->set_value(run->exit_code == 0);
  return grpc::Status::OK;
}

grpc::Status RefServiceImpl::FindBranch(grpc::ServerContext* ctx, const gitaly::FindBranchRequest* req,
                                        gitaly::FindBranchResponse* resp) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (req->name().empty()) return ToGrpc(InvalidArgument("Branch name cannot be empty"));
  std::string name = req->name();
  if (name.rfind("refs/heads/", 0) == 0) name = name.substr(11);
  if (BadRefArgument(name)) return ToGrpc(InvalidArgument("invalid branch name"));
  // rev-parse of the full name: for-each-ref would also match a prefix.
  auto exact = RunGit(deps_->git, *path, {"rev-parse", "--verify", "--quiet", "refs/heads/" + name});
  if (!exact.ok()) return ToGrpc(exact.status());
  if (exact->exit_code != 0) return grpc::Status::OK;  // no such branch: empty response
  std::string oid = SplitLines(exact->out).front();
  auto commit = ReadCommit(deps_->git, *path, oid);
  if (!commit.ok()) return ToGrpc(commit.status());
  resp->mutable_branch()->set_name(name);
  *resp->mutable_branch()->mutable_target_commit() = std::move(*commit);
  return grpc::Status::OK;
}

grpc::Status RefServiceImpl::DeleteRefs(grpc::ServerContext* ctx, const gitaly::DeleteRefsRequest* req,
                                        gitaly::DeleteRefsResponse* resp) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (req->except_with_prefix_size() > 0 && req->refs_size() > 0)
    return ToGrpc(InvalidArgument("ExceptWithPrefix and Refs are mutually exclusive"));
  if (req->except_with_prefix_size() == 0 && req->refs_size() == 0)
    return ToGrpc(InvalidArgument("empty ExceptWithPrefix and Refs"));
  std::vector<std::string> doomed;
  if (req->refs_size() > 0) {
    for (const auto& ref : req->refs()) {
      if (BadRefArgument(ref)) return ToGrpc(InvalidArgument("invalid ref: \"" + ref + "\""));
      doomed.push_back(ref);
    }
  } else {
    auto all = ForEachRef(*path, "%(refname)", {});
    if (!all.ok()) return ToGrpc(all.status());
    for (const auto& ref : *all) {
      bool keep = std::any_of(req->except_with_prefix().begin(), req->except_with_prefix().end(),
                              [&](const std::string& prefix) { return ref.rfind(prefix, 0) == 0; });
      if (!keep) doomed.push_back(ref);
    }
  }
  auto tx = BeginTransaction(deps_->transactions, *ctx);
  if (!tx.ok()) return ToGrpc(tx.status());
  std::string input, names;
  for (const auto& ref : doomed) {
    input += "delete " + ref + "\n";
    names += ref + "\n";
  }
  // Deletions without an old value reach the reference-transaction hook as
  // force deletions (zero to zero), which are not voted on; as Gitaly, the
  // call votes on the names it deletes itself, before and after.
  if (*tx != nullptr) {
    if (Status st = (*tx)->VoteOn(names, gitaly::VoteTransactionRequest::PREPARED_PHASE); !st.ok())
      return ToGrpc(Status(st.code(), "DeleteRefs: preparatory vote: " + st.message() + "; nothing was deleted"));
  }
  auto run = RunGit(deps_->git, *path, {"update-ref", "--stdin"}, input);
  if (!run.ok()) return ToGrpc(run.status());
  if (*tx != nullptr && run->exit_code == 0) {
    if (Status st = (*tx)->VoteOn(names, gitaly::VoteTransactionRequest::COMMITTED_PHASE); !st.ok())
      return ToGrpc(Status(st.code(), "DeleteRefs: committing vote: " + st.message()));
  }
  // Gitaly reports a failed update in the response, not as an error.
  if (run->exit_code != 0) resp->set_git_error("unable to delete refs: " + run->err);
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
