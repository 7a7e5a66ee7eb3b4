#include "smarthttp_service.h"

#include <cstdio>
#include <memory>
#include <string_view>
#include <vector>

#include "ssh_git_process.h"
#include "ssh_stream_pump.h"
#include "transactional_git.h"

namespace praefect::storagenode {
namespace {

// One pkt-line: four hex digits of length (themselves included), then data.
std::string PktLine(const std::string& data) {
  char length[5];
  std::snprintf(length, sizeof length, "%04zx", data.size() + 4);
  return length + data;
}

grpc::Status Failed(grpc::StatusCode code, std::string_view method, const GitStreamOutcome& outcome) {
  return grpc::Status(code, std::string(method) + ": exit status " + std::to_string(outcome.exit_code) +
                                ", stderr: \"" + outcome.stderr_tail + "\"");
}

grpc::Status ClientGone(std::string_view method) {
  return grpc::Status(grpc::StatusCode::CANCELLED,
                      std::string(method) + ": the client went away before git finished");
}

// A Post* stream once its first request was checked: git's stdin from the
// data of the later requests, its stdout back as data.
template <typename Response, typename Request>
grpc::Status RunPost(grpc::ServerContext* ctx, grpc::ServerReaderWriter<Response, Request>* stream,
                     const PackCommandOptions& options, const StatusOr<std::vector<std::string>>& argv,
                     const std::vector<std::string>& env, std::string_view method) {
  if (!argv.ok()) return ToGrpc(argv.status());
  StatusOr<std::unique_ptr<SshGitProcess>> process = SshGitProcess::Spawn(*argv, env);
  if (!process.ok()) return ToGrpc(process.status());
  GitStreamOutcome outcome = PumpGitStream(
      ctx, stream, **process, [](const Request& request) -> const std::string& { return request.data(); },
      [stream](SshOutput which, std::string_view data) {
        // Gitaly logs git's stderr; a smart HTTP client sees only stdout.
        if (which == SshOutput::kStderr) return true;
        Response response;
        response.set_data(data.data(), data.size());
        return stream->Write(response);
      },
      [](int) { return true; }, options.drain_timeout);
  if (!outcome.client_ok) return ClientGone(method);
  if (outcome.exit_code != 0) return Failed(grpc::StatusCode::UNAVAILABLE, method, outcome);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status SmartHttpServiceImpl::InfoRefs(grpc::ServerContext* ctx, const gitaly::InfoRefsRequest& req,
                                            const std::string& service,
                                            grpc::ServerWriter<gitaly::InfoRefsResponse>* writer) {
  constexpr std::string_view kMethod = "GetInfoRefs";  // Gitaly's prefix for both methods
  auto path = ExistingRepoPath(*deps_, *ctx, &req.repository(), req.has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  auto argv =
      PackCommandArgv(options_, req.git_config_options(), service, {"--stateless-rpc", "--advertise-refs"}, *path);
  if (!argv.ok()) return ToGrpc(argv.status());
  auto process = SshGitProcess::Spawn(*argv, PackCommandEnv(options_, req.git_protocol()));
  if (!process.ok()) return ToGrpc(process.status());
  (*process)->CloseStdin();

  auto send = [writer](std::string_view data) {
    gitaly::InfoRefsResponse response;
    response.set_data(data.data(), data.size());
    return writer->Write(response);
  };
  // Written before git's output whatever the protocol version, as Gitaly does.
  GitStreamOutcome outcome;
  outcome.client_ok =
      send(PktLine("# service=git-" + service + "\n")) && send("0000") &&
      PumpSshOutput(
          **process, [&](SshOutput which, std::string_view data) { return which == SshOutput::kStderr || send(data); },
          [ctx] { return ctx->IsCancelled(); }, &outcome.stderr_tail);
  if (!outcome.client_ok) return ClientGone(kMethod);  // the destructor kills and reaps git
  outcome.exit_code = (*process)->Wait();
  if (outcome.exit_code != 0) return Failed(grpc::StatusCode::INTERNAL, kMethod, outcome);
  return grpc::Status::OK;
}

grpc::Status SmartHttpServiceImpl::InfoRefsUploadPack(grpc::ServerContext* ctx, const gitaly::InfoRefsRequest* req,
                                                      grpc::ServerWriter<gitaly::InfoRefsResponse>* writer) {
  return InfoRefs(ctx, *req, "upload-pack", writer);
}

grpc::Status SmartHttpServiceImpl::InfoRefsReceivePack(grpc::ServerContext* ctx, const gitaly::InfoRefsRequest* req,
                                                       grpc::ServerWriter<gitaly::InfoRefsResponse>* writer) {
  return InfoRefs(ctx, *req, "receive-pack", writer);
}

grpc::Status SmartHttpServiceImpl::PostUploadPack(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<gitaly::PostUploadPackResponse, gitaly::PostUploadPackRequest>* stream) {
  constexpr std::string_view kMethod = "PostUploadPack";
  if (Status st = Authorize(*deps_, *ctx); !st.ok()) return ToGrpc(st);
  gitaly::PostUploadPackRequest first;
  if (!stream->Read(&first)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "PostUploadPack: the client sent no request");
  }
  if (!first.data().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "PostUploadPack: non-empty Data");
  }
  auto path = LocateExistingRepo(*deps_, &first.repository(), first.has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  return RunPost(ctx, stream, options_,
                 PackCommandArgv(options_, first.git_config_options(), "upload-pack", {"--stateless-rpc"}, *path),
                 PackCommandEnv(options_, first.git_protocol()), kMethod);
}

grpc::Status SmartHttpServiceImpl::PostReceivePack(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<gitaly::PostReceivePackResponse, gitaly::PostReceivePackRequest>* stream) {
  constexpr std::string_view kMethod = "PostReceivePack";
  if (Status st = Authorize(*deps_, *ctx); !st.ok()) return ToGrpc(st);
  gitaly::PostReceivePackRequest first;
  if (!stream->Read(&first)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "PostReceivePack: the client sent no request");
  }
  if (first.gl_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "PostReceivePack: empty GlId");
  }
  if (!first.data().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "PostReceivePack: non-empty Data");
  }
  auto path = LocateExistingRepo(*deps_, &first.repository(), first.has_repository());
  if (!path.ok()) return ToGrpc(path.status());
  auto tx = BeginTransaction(deps_->transactions, *ctx);
  if (!tx.ok()) return ToGrpc(tx.status());
  // The hooks (GitLab's, or a test's) read who pushes from these.
  std::vector<std::string> env = PackCommandEnv(options_, first.git_protocol());
  env.push_back("GL_ID=" + first.gl_id());
  env.push_back("GL_REPOSITORY=" + first.gl_repository());
  env.push_back("GL_USERNAME=" + first.gl_username());
  env.push_back("GL_PROTOCOL=http");
  std::vector<std::string> forced;
  if (*tx != nullptr) {
    forced = (*tx)->GitConfig();
    for (std::string& entry : (*tx)->HookEnv(*path)) env.push_back(std::move(entry));
  }
  grpc::Status pushed = RunPost(
      ctx, stream, options_,
      PackCommandArgv(options_, first.git_config_options(), "receive-pack", {"--stateless-rpc"}, *path, forced), env,
      kMethod);
  return FinishReceivePack(tx->get(), pushed, kMethod);
}

}  // namespace praefect::storagenode
