#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "pack_command.h"
#include "repo_locator.h"
#include "ssh.grpc.pb.h"

namespace praefect::storagenode {

// Shared with SmartHTTPService, which runs the same git commands.
using SshServiceOptions = PackCommandOptions;

// gitaly.SSHService over real `git upload-pack` / `git receive-pack`
// processes, on grpc++'s synchronous API: each stream holds a server thread
// plus one thread of its own for stdin. Register with
// `grpc::ServerBuilder::RegisterService(&service)`.
//
// Behaves as Gitaly's internal/gitaly/service/ssh: the first request carries
// the repository (and for receive-pack gl_id, gl_repository, gl_username) and
// no stdin; git_config_options become `git -c` arguments; git_protocol
// "version=2" becomes GIT_PROTOCOL. SSHUploadArchive is UNIMPLEMENTED.
// SSHReceivePack takes part in the reference transaction a call carries
// (options.transactions; transactional_git.h), as Gitaly's.
//
// Thread-safe. `locator` must outlive the service.
class SshService : public gitaly::SSHService::Service {
 public:
  explicit SshService(const RepoLocator& locator, SshServiceOptions options = {})
      : locator_(locator), options_(std::move(options)) {}

  grpc::Status SSHUploadPack(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<gitaly::SSHUploadPackResponse, gitaly::SSHUploadPackRequest>* stream) override;
  grpc::Status SSHReceivePack(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<gitaly::SSHReceivePackResponse, gitaly::SSHReceivePackRequest>* stream)
      override;
  grpc::Status SSHUploadArchive(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<gitaly::SSHUploadArchiveResponse, gitaly::SSHUploadArchiveRequest>* stream)
      override;

 private:
  const RepoLocator& locator_;
  const SshServiceOptions options_;
};

}  // namespace praefect::storagenode
