// RepositoryService/ReplicateRepository: the target node pulls a repository
// from the source node with real git, through git-remote-gitaly
// (SSHUploadPack on the source), so refs end identical to the source's.
#include <stdio.h>

#include <cctype>
#include <cerrno>
#include <cstring>

#include "fs_util.h"
#include "gitaly_servers.h"
#include "log/log.h"
#include "repository_service.h"

namespace praefect::storagenode {
namespace {

// gitaly:///<storage>/<path> with the characters git-remote-gitaly decodes
// escaped; the address travels in GITALY_ADDRESS.
std::string GitalyUrl(const gitaly::Repository& repo) {
  std::string url = "gitaly:///";
  auto append = [&url](const std::string& part) {
    static const char* kHex = "0123456789ABCDEF";
    for (unsigned char c : part) {
      if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '@' || c == '~' || c == '+') {
        url.push_back(static_cast<char>(c));
      } else {
        url.push_back('%');
        url.push_back(kHex[c >> 4]);
        url.push_back(kHex[c & 15]);
      }
    }
  };
  append(repo.storage_name());
  url.push_back('/');
  append(repo.relative_path());
  return url;
}


}  // namespace

// Fetches every ref of the source into `repo_path` with pruning and forced
// updates, then points HEAD where the source's HEAD points.
Status RepositoryServiceImpl::PullFrom(const std::string& repo_path, const gitaly::Repository& source,
                                       const ServerAddress& server) {
  const std::string url = GitalyUrl(source);
  const std::vector<std::string> env = {"GITALY_ADDRESS=" + server.address, "GITALY_TOKEN=" + server.token};
  const std::string where = "storage \"" + source.storage_name() + "\" at " + server.address;
  auto fetch = RunProgram(deps_->git,
                          GitArgv(deps_->git, repo_path,
                                  {"fetch", "--quiet", "--prune", "--force", "--no-write-fetch-head", url,
                                   "+refs/*:refs/*"}),
                          "", env);
  if (!fetch.ok()) return fetch.status();
  if (fetch->exit_code != 0)
    return Internal("ReplicateRepository: fetching from " + where + ": " + TrimTrailing(fetch->err));
  auto head = RunProgram(deps_->git, GitArgv(deps_->git, repo_path, {"ls-remote", "--symref", url, "HEAD"}), "", env);
  if (!head.ok()) return head.status();
  if (head->exit_code != 0)
    return Internal("ReplicateRepository: reading HEAD of the source at " + where + ": " + TrimTrailing(head->err));
  // "ref: refs/heads/main\tHEAD"; absent when the source's HEAD is unborn.
  const std::string prefix = "ref: ";
  if (head->out.compare(0, prefix.size(), prefix) == 0) {
    std::string target = head->out.substr(prefix.size(), head->out.find('\t') - prefix.size());
    auto set = RunGit(deps_->git, repo_path, {"symbolic-ref", "HEAD", target});
    if (!set.ok()) return set.status();
    if (set->exit_code != 0) return Internal("ReplicateRepository: setting HEAD: " + TrimTrailing(set->err));
  }
  return Status::Ok();
}

grpc::Status RepositoryServiceImpl::ReplicateRepository(grpc::ServerContext* ctx,
                                                        const gitaly::ReplicateRepositoryRequest* req,
                                                        gitaly::ReplicateRepositoryResponse*) {
  auto path = RepoPathFor(*deps_, *ctx, &req->repository(), req->has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  if (!req->has_source()) return ToGrpc(InvalidArgument("ReplicateRepository: empty source repository"));
  const gitaly::Repository& source = req->source();
  if (source.storage_name() == req->repository().storage_name())
    return ToGrpc(InvalidArgument("ReplicateRepository: source and target are on the same storage \"" +
                                  source.storage_name() + "\""));
  const auto& md = ctx->client_metadata();
  auto it = md.find(std::string(kGitalyServersMetadataKey));
  if (it == md.end())
    return ToGrpc(InvalidArgument(
        "ReplicateRepository: no gitaly-servers metadata: the caller must pass the source storage's address "
        "and token"));
  auto servers = ParseGitalyServers(std::string_view(it->second.data(), it->second.size()));
  if (!servers.ok()) return ToGrpc(servers.status());
  auto server = servers->find(source.storage_name());
  if (server == servers->end() || server->second.address.empty())
    return ToGrpc(InvalidArgument("ReplicateRepository: gitaly-servers metadata has no address for source storage \"" +
                                  source.storage_name() + "\""));

  if (IsGitDirectory(*path)) {
    if (Status st = PullFrom(*path, source, server->second); !st.ok()) return ToGrpc(st);
    return grpc::Status::OK;
  }
  // A new replica is built in the scratch directory and renamed into place,
  // so a crash or a failed fetch never leaves a half-filled repository.
  auto storage = deps_->locator->StoragePath(req->repository().storage_name());
  if (!storage.ok()) return ToGrpc(storage.status());
  auto tmp = MakeTempDir(*storage, "replicate");
  if (!tmp.ok()) return ToGrpc(tmp.status());
  std::string staged = *tmp + "/repo.git";
  auto init = RunProgram(deps_->git, {deps_->git.git_binary, "init", "--bare", "--quiet", staged});
  Status st = !init.ok() ? init.status()
              : init->exit_code != 0 ? Internal("ReplicateRepository: git init: " + TrimTrailing(init->err))
                                     : PullFrom(staged, source, server->second);
  if (st.ok()) st = MoveIntoPlace(staged, *path, "ReplicateRepository", "created meanwhile");
  (void)RemoveTree(*tmp);
  // Created meanwhile by another call: bring that one up to date instead.
  if (st.code() == StatusCode::kAlreadyExists) st = PullFrom(*path, source, server->second);
  return ToGrpc(st);
}

}  // namespace praefect::storagenode
