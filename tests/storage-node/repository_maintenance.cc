#include <cstdlib>

#include "ref_checksum.h"
#include "repository_service.h"
#include "transactional_git.h"

namespace praefect::storagenode {

grpc::Status RepositoryServiceImpl::Maintain(grpc::ServerContext* ctx, const gitaly::Repository* repo,
                                             bool has_repo, const std::vector<std::string>& args,
                                             const char* rpc) {
  auto path = ExistingRepoPath(*deps_, *ctx, repo, has_repo);
  if (!path.ok()) return ToGrpc(path.status());
  auto run = RunGit(deps_->git, *path, args);
  if (!run.ok()) return ToGrpc(run.status());
  if (run->exit_code != 0)
    return ToGrpc(Internal(std::string(rpc) + ": git " + args[args.size() > 2 ? 2 : 0] +
                           " failed: " + run->err));
  return grpc::Status::OK;
}

grpc::Status RepositoryServiceImpl::GarbageCollect(grpc::ServerContext* ctx,
                                                   const gitaly::GarbageCollectRequest* req,
                                                   gitaly::GarbageCollectResponse*) {
  std::string bitmaps = req->create_bitmap() ? "true" : "false";
  return Maintain(ctx, &req->repository(), req->has_repository(),
                  {"-c", "repack.writeBitmaps=" + bitmaps, "gc", "--quiet"}, "GarbageCollect");
}

grpc::Status RepositoryServiceImpl::RepackFull(grpc::ServerContext* ctx, const gitaly::RepackFullRequest* req,
                                               gitaly::RepackFullResponse*) {
  std::string bitmaps = req->create_bitmap() ? "true" : "false";
  return Maintain(ctx, &req->repository(), req->has_repository(),
                  {"-c", "repack.writeBitmaps=" + bitmaps, "repack", "-A", "--pack-kept-objects", "-l", "-d",
                   "-q"},
                  "RepackFull");
}

grpc::Status RepositoryServiceImpl::RepackIncremental(grpc::ServerContext* ctx,
                                                      const gitaly::RepackIncrementalRequest* req,
                                                      gitaly::RepackIncrementalResponse*) {
  return Maintain(ctx, &req->repository(), req->has_repository(), {"-c", "gc.auto=0", "repack", "-d", "-q"},
                  "RepackIncremental");
}

grpc::Status RepositoryServiceImpl::Cleanup(grpc::ServerContext* ctx, const gitaly::CleanupRequest* req,
                                            gitaly::CleanupResponse*) {
  // Gitaly removes stale lock files and worktrees; the node creates neither,
  // so pruning worktrees is all there is to do.
  return Maintain(ctx, &req->repository(), req->has_repository(), {"-c", "gc.auto=0", "worktree", "prune"},
                  "Cleanup");
}

grpc::Status RepositoryServiceImpl::RepositorySize(grpc::ServerContext* ctx,
                                                   const gitaly::RepositorySizeRequest* req,
                                                   gitaly::RepositorySizeResponse* resp) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  // Gitaly runs `du -sk` and reports KiB.
  auto du = RunProgram(deps_->git, {"du", "-sk", *path});
  if (!du.ok()) return ToGrpc(du.status());
  if (du->exit_code != 0) return ToGrpc(Internal("RepositorySize: du failed: " + du->err));
  resp->set_size(std::strtoll(du->out.c_str(), nullptr, 10));
  return grpc::Status::OK;
}

grpc::Status RepositoryServiceImpl::CalculateChecksum(grpc::ServerContext* ctx,
                                                      const gitaly::CalculateChecksumRequest* req,
                                                      gitaly::CalculateChecksumResponse* resp) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  auto run = RunGit(deps_->git, *path, {"show-ref", "--head"});
  if (!run.ok()) return ToGrpc(run.status());
  // show-ref exits 1 when there is nothing to show: an empty repository.
  if (run->exit_code != 0 && !(run->exit_code == 1 && run->out.empty()))
    return ToGrpc(Status(StatusCode::kDataLoss,
                         "CalculateChecksum: not a git repository '" + *path + "': " + run->err));
  RefChecksum sum;
  sum.AddOutput(run->out);
  resp->set_checksum(sum.Hex());
  return grpc::Status::OK;
}

grpc::Status RepositoryServiceImpl::WriteRef(grpc::ServerContext* ctx, const gitaly::WriteRefRequest* req,
                                             gitaly::WriteRefResponse*) {
  auto path = ExistingRepoPath(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  const std::string& ref = req->ref();
  const std::string& rev = req->revision();
  if (ref.empty()) return ToGrpc(InvalidArgument("WriteRef: Invalid Argument: Ref is empty"));
  if (rev.empty()) return ToGrpc(InvalidArgument("WriteRef: Invalid Argument: Revision is empty"));
  for (const std::string* s : {&ref, &rev, &req->old_revision()}) {
    if (s->find_first_of(std::string("\n\0", 2)) != std::string::npos || (!s->empty() && (*s)[0] == '-'))
      return ToGrpc(InvalidArgument("WriteRef: Invalid Argument: invalid reference or revision \"" + *s + "\""));
  }
  if (ref != "HEAD" && ref.rfind("refs/", 0) != 0)
    return ToGrpc(InvalidArgument("WriteRef: Invalid Argument: ref has to be a full reference or HEAD: \"" +
                                  ref + "\""));
  auto tx = BeginTransaction(deps_->transactions, *ctx);
  if (!tx.ok()) return ToGrpc(tx.status());
  if (ref == "HEAD") return WriteHead(*path, rev, tx->get());
  std::string line = "update " + ref + " " + rev;
  if (!req->old_revision().empty()) line += " " + req->old_revision();
  // In a transaction the reference-transaction hook votes on the update.
  auto run = RunGitUpdatingRefs(*deps_, tx->get(), *path, {"update-ref", "--stdin"}, line + "\n");
  if (!run.ok()) return ToGrpc(run.status());
  if (Status failed = TransactionFailure(tx->get(), "WriteRef"); !failed.ok()) return ToGrpc(failed);
  if (run->exit_code != 0) return ToGrpc(Internal("WriteRef: error when running update-ref: " + run->err));
  return grpc::Status::OK;
}

// git symbolic-ref runs no reference-transaction hook; in a transaction the
// new content of HEAD is voted on around the write, as Gitaly votes on the
// files it writes (PREPARED before, COMMITTED after).
grpc::Status RepositoryServiceImpl::WriteHead(const std::string& path, const std::string& target,
                                              CallTransaction* tx) {
  const std::string content = "ref: " + target + "\n";
  if (tx != nullptr) {
    if (Status st = tx->VoteOn(content, gitaly::VoteTransactionRequest::PREPARED_PHASE); !st.ok())
      return ToGrpc(Status(st.code(), "WriteRef: HEAD was not changed: " + st.message()));
  }
  auto run = RunGit(deps_->git, path, {"symbolic-ref", "HEAD", target});
  if (!run.ok()) return ToGrpc(run.status());
  if (run->exit_code != 0) return ToGrpc(Internal("WriteRef: error when running symbolic-ref: " + run->err));
  if (tx != nullptr) {
    if (Status st = tx->VoteOn(content, gitaly::VoteTransactionRequest::COMMITTED_PHASE); !st.ok())
      return ToGrpc(Status(st.code(), "WriteRef: HEAD was changed but not committed: " + st.message()));
  }
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
