#include "connect.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <mutex>
#include <thread>

#include "auth/token.h"
#include "common/status.h"
#include "ssh.grpc.pb.h"

namespace praefect::gitremote {
namespace {

constexpr size_t kStdinChunk = 64 * 1024;

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

void Fatal(const std::string& message) { WriteAll(STDERR_FILENO, "fatal: git-remote-gitaly: " + message + "\n"); }

std::string Describe(const Remote& remote) {
  return "repository \"" + remote.relative_path + "\" on storage \"" + remote.storage_name + "\" at " +
         remote.target;
}

void FillFirst(gitaly::SSHUploadPackRequest* request, const ConnectOptions& options) {
  request->set_git_protocol(options.git_protocol);
}

void FillFirst(gitaly::SSHReceivePackRequest* request, const ConnectOptions& options) {
  // git has no protocol v2 for pushes; receive-pack would ignore it.
  request->set_gl_id(options.gl_id);
  request->set_gl_username(options.gl_username);
  request->set_gl_repository(options.gl_repository);
}

// One SSH stream and what its stdin thread shares with the main thread. Held
// by shared_ptr: the stdin thread is detached and may outlive Pump().
template <typename Request, typename Response>
struct Session {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<Request, Response>> stream;
  std::mutex mu;        // Write/WritesDone against each other and Finish
  bool closed = false;  // GUARDED_BY(mu): half-closed or finished; no more writes
};

// Copies fd 0 to the stream until EOF (then half-closes) or the call ends.
template <typename Request, typename Response>
void PumpStdin(std::shared_ptr<Session<Request, Response>> session) {
  std::string buffer(kStdinChunk, '\0');
  while (true) {
    ssize_t n = read(STDIN_FILENO, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard<std::mutex> lock(session->mu);
    if (session->closed) return;
    if (n <= 0) {
      (void)session->stream->WritesDone();
      session->closed = true;
      return;
    }
    Request request;
    request.set_stdin(buffer.data(), static_cast<size_t>(n));
    if (!session->stream->Write(request)) return;
  }
}

template <typename Request, typename Response, typename Open>
int Pump(const Remote& remote, std::string_view method, const ConnectOptions& options, Open open) {
  auto session = std::make_shared<Session<Request, Response>>();
  if (!options.token.empty()) {
    session->context.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                                 auth::BearerV2(options.token, std::chrono::system_clock::now()));
  }
  session->stream = open(&session->context);
  auto* stream = session->stream.get();

  Request first;
  first.mutable_repository()->set_storage_name(remote.storage_name);
  first.mutable_repository()->set_relative_path(remote.relative_path);
  FillFirst(&first, options);
  {
    std::lock_guard<std::mutex> lock(session->mu);
    (void)stream->Write(first);
  }
  // The call is open: git now speaks the pack protocol over fds 0 and 1.
  if (!WriteAll(STDOUT_FILENO, "\n")) return 128;

  // git closes our stdin only when it is done with us, and the call may end
  // first; the thread must never hold up the exit.
  std::thread(PumpStdin<Request, Response>, session).detach();

  Response response;
  bool have_exit = false;
  int exit_status = 0;
  bool output_ok = true;
  while (stream->Read(&response)) {
    if (!response.stdout().empty() && !WriteAll(STDOUT_FILENO, response.stdout())) {
      // git hung up: stop the remote side rather than stream into the void.
      output_ok = false;
      session->context.TryCancel();
      break;
    }
    if (!response.stderr().empty()) (void)WriteAll(STDERR_FILENO, response.stderr());
    if (response.has_exit_status() && !have_exit) {
      have_exit = true;
      exit_status = response.exit_status().value();
      // The remote git is gone, so nothing more will read our stdin; git may
      // never close it (it waits for output that will not come), and the
      // server ends the call once we half-close.
      std::lock_guard<std::mutex> lock(session->mu);
      if (!session->closed) (void)stream->WritesDone();
      session->closed = true;
    }
  }
  if (!output_ok) return 128;
  grpc::Status status;
  {
    std::lock_guard<std::mutex> lock(session->mu);
    session->closed = true;
    status = stream->Finish();
  }
  if (have_exit) return exit_status >= 0 && exit_status < 256 ? exit_status : 128;
  if (!status.ok()) {
    std::string hint;
    if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
        status.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
      hint = " (check GITALY_TOKEN: it must hold the server's auth token)";
    }
    Fatal(std::string(method) + " for " + Describe(remote) + " failed: " +
          std::string(StatusCodeName(static_cast<StatusCode>(status.error_code()))) + ": " +
          status.error_message() + hint);
    return 128;
  }
  return 0;
}

}  // namespace

int Connect(const Remote& remote, std::string_view service, const ConnectOptions& options) {
  std::shared_ptr<grpc::ChannelCredentials> credentials =
      remote.tls ? grpc::SslCredentials(grpc::SslCredentialsOptions()) : grpc::InsecureChannelCredentials();
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(remote.target, credentials);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + options.connect_timeout)) {
    Fatal("cannot connect to " + remote.target + " within " + std::to_string(options.connect_timeout.count()) +
          "s (is the server running? GITALY_ADDRESS overrides the address)");
    return 128;
  }
  std::unique_ptr<gitaly::SSHService::Stub> stub = gitaly::SSHService::NewStub(channel);
  if (service == "git-upload-pack") {
    return Pump<gitaly::SSHUploadPackRequest, gitaly::SSHUploadPackResponse>(
        remote, "SSHUploadPack", options, [&](grpc::ClientContext* c) { return stub->SSHUploadPack(c); });
  }
  return Pump<gitaly::SSHReceivePackRequest, gitaly::SSHReceivePackResponse>(
      remote, "SSHReceivePack", options, [&](grpc::ClientContext* c) { return stub->SSHReceivePack(c); });
}

}  // namespace praefect::gitremote
