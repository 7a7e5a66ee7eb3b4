// RepositoryService/CreateRepositoryFromBundle (client streaming): the
// bundle's bytes are written to the scratch directory as they arrive, then
// fetched into a fresh repository that is renamed into place.
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fs_util.h"
#include "repository_service.h"
#include "transactional_git.h"

namespace praefect::storagenode {
namespace {


bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

grpc::Status RepositoryServiceImpl::CreateRepositoryFromBundle(
    grpc::ServerContext* ctx, grpc::ServerReader<gitaly::CreateRepositoryFromBundleRequest>* reader,
    gitaly::CreateRepositoryFromBundleResponse*) {
  gitaly::CreateRepositoryFromBundleRequest msg;
  if (!reader->Read(&msg)) return ToGrpc(InvalidArgument("CreateRepositoryFromBundle: empty request stream"));
  auto path = RepoPathFor(*deps_, *ctx, &msg.repository(), msg.has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (PathExists(*path))
    return ToGrpc(Status(StatusCode::kAlreadyExists, "CreateRepositoryFromBundle: repository exists already"));
  auto storage = deps_->locator->StoragePath(msg.repository().storage_name());
  if (!storage.ok()) return ToGrpc(storage.status());
  auto tx = BeginTransaction(deps_->transactions, *ctx);
  if (!tx.ok()) return ToGrpc(tx.status());
  auto tmp = MakeTempDir(*storage, "bundle");
  if (!tmp.ok()) return ToGrpc(tmp.status());
  auto fail = [&](Status st) {
    (void)RemoveTree(*tmp);
    return ToGrpc(st);
  };
  const std::string bundle = *tmp + "/repo.bundle";
  const std::string staged = *tmp + "/repo.git";
  int fd = open(bundle.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail(Internal("CreateRepositoryFromBundle: " + std::string(std::strerror(errno))));
  bool written = WriteAll(fd, msg.data());
  while (written && reader->Read(&msg)) written = WriteAll(fd, msg.data());
  if (close(fd) != 0) written = false;
  if (!written) return fail(Internal("CreateRepositoryFromBundle: writing the bundle: " + std::string(std::strerror(errno))));
  if (ctx->IsCancelled()) return fail(Status(StatusCode::kCancelled, "CreateRepositoryFromBundle: cancelled"));

  auto init = RunProgram(deps_->git, {deps_->git.git_binary, "init", "--bare", "--quiet", staged});
  if (!init.ok()) return fail(init.status());
  if (init->exit_code != 0) return fail(Internal("CreateRepositoryFromBundle: git init: " + TrimTrailing(init->err)));
  auto fetch = RunGit(deps_->git, staged, {"fetch", "--quiet", "--atomic", bundle, "+refs/*:refs/*"});
  if (!fetch.ok()) return fail(fetch.status());
  if (fetch->exit_code != 0)
    return fail(InvalidArgument("CreateRepositoryFromBundle: the data is not a usable git bundle: " +
                                TrimTrailing(fetch->err)));
  // A bundle records HEAD's object, not its branch: point HEAD at the branch
  // at that object (main or master first), as cloning the bundle would.
  auto heads = RunGit(deps_->git, staged, {"bundle", "list-heads", bundle});
  if (heads.ok() && heads->exit_code == 0) {
    std::string head_oid, chosen;
    std::vector<std::pair<std::string, std::string>> branches;
    size_t pos = 0;
    while (pos < heads->out.size()) {
      size_t nl = heads->out.find('\n', pos);
      std::string line = heads->out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      pos = nl == std::string::npos ? heads->out.size() : nl + 1;
      size_t sp = line.find(' ');
      if (sp == std::string::npos) continue;
      std::string oid = line.substr(0, sp), ref = line.substr(sp + 1);
      if (ref == "HEAD") head_oid = oid;
      else if (ref.rfind("refs/heads/", 0) == 0) branches.emplace_back(oid, ref);
    }
    for (const char* preferred : {"refs/heads/main", "refs/heads/master"})
      for (const auto& [oid, ref] : branches)
        if (chosen.empty() && ref == preferred && oid == head_oid) chosen = ref;
    for (const auto& [oid, ref] : branches)
      if (chosen.empty() && oid == head_oid) chosen = ref;
    if (!chosen.empty()) (void)RunGit(deps_->git, staged, {"symbolic-ref", "HEAD", chosen});
  }
  (void)unlink(bundle.c_str());
  if (Status st = PublishRepository(*deps_, tx->get(), staged, *path, "CreateRepositoryFromBundle",
                                    "CreateRepositoryFromBundle: repository exists already");
      !st.ok())
    return fail(st);
  (void)RemoveTree(*tmp);
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
