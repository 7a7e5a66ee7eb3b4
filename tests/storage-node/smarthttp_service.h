#pragma once

#include <grpcpp/grpcpp.h>

#include "pack_command.h"
#include "request_context.h"
#include "smarthttp.grpc.pb.h"

namespace praefect::storagenode {

// gitaly.SmartHTTPService over real `git upload-pack` / `git receive-pack
// --stateless-rpc` processes, as Gitaly's internal/gitaly/service/smarthttp:
//
// * InfoRefs*: the pkt-line "# service=git-<service>\n" and a flush, then
//   the stdout of `--advertise-refs`, in messages of at most 128 KiB (the
//   header and the flush are messages of their own, as Gitaly's writes are);
//   a failing git ends the call INTERNAL.
// * Post*: the first request carries the repository (and for receive-pack
//   gl_id, gl_repository, gl_username) and no data; the data of the later
//   ones is git's stdin, git's stdout comes back as data; git's stderr is
//   not sent, but a failing git ends the call UNAVAILABLE with it in the
//   message.
//
// git_config_options become `git -c` arguments, git_protocol "version=2"
// becomes GIT_PROTOCOL. PostReceivePack takes part in the reference
// transaction a call carries (transactional_git.h), as Gitaly's. Every call is authorized before git starts. Nothing
// is buffered beyond one chunk. Each bidi stream holds a server thread and
// one thread of its own for stdin.
//
// Thread-safe. `deps` must outlive the service.
class SmartHttpServiceImpl final : public gitaly::SmartHTTPService::Service {
 public:
  SmartHttpServiceImpl(const NodeDeps* deps, PackCommandOptions options)
      : deps_(deps), options_(std::move(options)) {}

  grpc::Status InfoRefsUploadPack(grpc::ServerContext* ctx, const gitaly::InfoRefsRequest* req,
                                  grpc::ServerWriter<gitaly::InfoRefsResponse>* writer) override;
  grpc::Status InfoRefsReceivePack(grpc::ServerContext* ctx, const gitaly::InfoRefsRequest* req,
                                   grpc::ServerWriter<gitaly::InfoRefsResponse>* writer) override;
  grpc::Status PostUploadPack(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<gitaly::PostUploadPackResponse, gitaly::PostUploadPackRequest>* stream) override;
  grpc::Status PostReceivePack(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<gitaly::PostReceivePackResponse, gitaly::PostReceivePackRequest>* stream) override;

 private:
  grpc::Status InfoRefs(grpc::ServerContext* ctx, const gitaly::InfoRefsRequest& req, const std::string& service,
                        grpc::ServerWriter<gitaly::InfoRefsResponse>* writer);

  const NodeDeps* deps_;
  const PackCommandOptions options_;
};

}  // namespace praefect::storagenode
