#include "ssh_service.h"

#include <sys/stat.h>

#include <memory>
#include <string_view>
#include <vector>

#include "ssh_git_process.h"
#include "ssh_stream_pump.h"
#include "transactional_git.h"

namespace praefect::storagenode {
namespace {

std::string Describe(const gitaly::Repository& repo) {
  return "repository \"" + repo.relative_path() + "\" on storage \"" + repo.storage_name() + "\"";
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// The checks Gitaly makes on the first request of an SSH stream.
StatusOr<std::string> RepoPathOf(const RepoLocator& locator, bool has_repository,
                                 const gitaly::Repository& repo, bool has_stdin, std::string_view method) {
  if (has_stdin) return InvalidArgument(std::string(method) + ": non-empty stdin in first request");
  if (!has_repository) return InvalidArgument(std::string(method) + ": empty Repository");
  StatusOr<std::string> path = locator.Locate(repo);
  if (!path.ok()) return path;
  if (!IsDirectory(*path + "/objects") || !IsDirectory(*path + "/refs")) {
    return NotFound(std::string(method) + ": " + Describe(repo) +
                    " does not exist (create it first, e.g. with CreateRepository)");
  }
  return path;
}

template <typename Response, typename Request>
grpc::Status Run(grpc::ServerContext* context, grpc::ServerReaderWriter<Response, Request>* stream,
                 const StatusOr<std::vector<std::string>>& argv, const std::vector<std::string>& env,
                 std::string_view method, std::chrono::milliseconds drain_timeout) {
  if (!argv.ok()) return ToGrpc(argv.status());
  StatusOr<std::unique_ptr<SshGitProcess>> process = SshGitProcess::Spawn(*argv, env);
  if (!process.ok()) return ToGrpc(process.status());
  return PumpSshStream(context, stream, **process, method, drain_timeout);
}

}  // namespace

grpc::Status SshService::SSHUploadPack(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<gitaly::SSHUploadPackResponse, gitaly::SSHUploadPackRequest>* stream) {
  constexpr std::string_view kMethod = "SSHUploadPack";
  gitaly::SSHUploadPackRequest first;
  if (!stream->Read(&first)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "SSHUploadPack: the client sent no request");
  }
  StatusOr<std::string> path =
      RepoPathOf(locator_, first.has_repository(), first.repository(), !first.stdin().empty(), kMethod);
  if (!path.ok()) return ToGrpc(path.status());
  return Run(context, stream, PackCommandArgv(options_, first.git_config_options(), "upload-pack", {}, *path),
             PackCommandEnv(options_, first.git_protocol()), kMethod, options_.drain_timeout);
}

grpc::Status SshService::SSHReceivePack(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<gitaly::SSHReceivePackResponse, gitaly::SSHReceivePackRequest>* stream) {
  constexpr std::string_view kMethod = "SSHReceivePack";
  gitaly::SSHReceivePackRequest first;
  if (!stream->Read(&first)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "SSHReceivePack: the client sent no request");
  }
  if (first.gl_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "SSHReceivePack: empty GlId");
  }
  StatusOr<std::string> path =
      RepoPathOf(locator_, first.has_repository(), first.repository(), !first.stdin().empty(), kMethod);
  if (!path.ok()) return ToGrpc(path.status());
  auto tx = BeginTransaction(options_.transactions, *context);
  if (!tx.ok()) return ToGrpc(tx.status());
  // The hooks (GitLab's, or a test's) read who pushes from these.
  std::vector<std::string> env = PackCommandEnv(options_, first.git_protocol());
  env.push_back("GL_ID=" + first.gl_id());
  env.push_back("GL_REPOSITORY=" + first.gl_repository());
  env.push_back("GL_USERNAME=" + first.gl_username());
  env.push_back("GL_PROTOCOL=ssh");
  std::vector<std::string> forced;
  if (*tx != nullptr) {
    forced = (*tx)->GitConfig();
    for (std::string& entry : (*tx)->HookEnv(*path)) env.push_back(std::move(entry));
  }
  grpc::Status pushed =
      Run(context, stream, PackCommandArgv(options_, first.git_config_options(), "receive-pack", {}, *path, forced),
          env, kMethod, options_.drain_timeout);
  return FinishReceivePack(tx->get(), pushed, kMethod);
}

grpc::Status SshService::SSHUploadArchive(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<gitaly::SSHUploadArchiveResponse, gitaly::SSHUploadArchiveRequest>*) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "SSHUploadArchive is not implemented by this storage node; use SSHUploadPack");
}

}  // namespace praefect::storagenode
