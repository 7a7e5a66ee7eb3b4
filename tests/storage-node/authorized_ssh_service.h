#pragma once

#include "request_context.h"
#include "ssh_service.h"

namespace praefect::storagenode {

// SshService behind the node's [auth] check, as every other service of the
// node: the token is verified before git is started. Thread-safe.
class AuthorizedSshService final : public SshService {
 public:
  // `deps` must outlive the service.
  AuthorizedSshService(const NodeDeps* deps, SshServiceOptions options)
      : SshService(*deps->locator, std::move(options)), deps_(deps) {}

  grpc::Status SSHUploadPack(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<gitaly::SSHUploadPackResponse, gitaly::SSHUploadPackRequest>* stream) override {
    if (Status st = Authorize(*deps_, *ctx); !st.ok()) return ToGrpc(st);
    return SshService::SSHUploadPack(ctx, stream);
  }

  grpc::Status SSHReceivePack(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<gitaly::SSHReceivePackResponse, gitaly::SSHReceivePackRequest>* stream) override {
    if (Status st = Authorize(*deps_, *ctx); !st.ok()) return ToGrpc(st);
    return SshService::SSHReceivePack(ctx, stream);
  }

 private:
  const NodeDeps* deps_;
};

}  // namespace praefect::storagenode
