#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/sync_stream.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "ssh_git_process.h"

namespace praefect::storagenode {

enum class SshOutput { kStdout, kStderr };

// Copies the child's stdout and stderr, as they come, to `send` in chunks of
// at most kSshChunkSize bytes, until both reach EOF. When `send` fails (the
// client went away) the child is killed and false returned. The last
// kSshStderrTail bytes of stderr are kept in *stderr_tail for the error
// message. Nothing is buffered beyond one chunk: a slow client slows git.
// `cancelled` is asked every kSshCancelCheck while git is silent (it may
// compute a pack for minutes), so a client that went away is noticed.
inline constexpr size_t kSshChunkSize = 128 * 1024;
inline constexpr size_t kSshStderrTail = 1024;
inline constexpr int kSshCancelCheckMillis = 100;
[[nodiscard]] bool PumpSshOutput(SshGitProcess& process,
                                 const std::function<bool(SshOutput, std::string_view)>& send,
                                 const std::function<bool()>& cancelled, std::string* stderr_tail);

// Runs one SSHService bidi stream around a started git process, as Gitaly
// does: every later request's stdin goes to git (EOF when the client
// half-closes), stdout/stderr come back as responses; a non-zero exit sends
// an exit_status response and ends the call with INTERNAL, a zero exit ends
// it OK without exit_status (clients read a missing one as 0).
//
// A client that never half-closes after git has exited gets `drain_timeout`
// to do so before the call is cancelled. Uses one extra thread for stdin.
template <typename Response, typename Request>
grpc::Status PumpSshStream(grpc::ServerContext* ctx, grpc::ServerReaderWriter<Response, Request>* stream,
                           SshGitProcess& process, std::string_view method,
                           std::chrono::milliseconds drain_timeout) {
  std::mutex mu;
  std::condition_variable cv;
  bool stdin_done = false;  // GUARDED_BY(mu)

  std::thread stdin_thread([&] {
    Request request;
    bool git_reads = true;
    while (stream->Read(&request)) {
      if (git_reads && !request.stdin().empty()) {
        git_reads = process.WriteStdin(request.stdin());
        // git stopped reading (it exited or closed stdin): keep draining the
        // client's requests so that it can finish writing.
        if (!git_reads) process.CloseStdin();
      }
    }
    process.CloseStdin();
    // A cancelled call (client gone, deadline) must not wait for a git that
    // may compute for a long time before it writes and notices.
    if (ctx->IsCancelled()) process.Kill();
    std::lock_guard<std::mutex> lock(mu);
    stdin_done = true;
    cv.notify_all();
  });

  std::string stderr_tail;
  bool client_ok = PumpSshOutput(
      process,
      [&](SshOutput which, std::string_view data) {
        Response response;
        if (which == SshOutput::kStdout) {
          response.set_stdout(data.data(), data.size());
        } else {
          response.set_stderr(data.data(), data.size());
        }
        return stream->Write(response);
      },
      [ctx] { return ctx->IsCancelled(); }, &stderr_tail);
  int exit_code = process.Wait();

  if (client_ok && exit_code != 0) {
    Response response;
    response.mutable_exit_status()->set_value(exit_code);
    client_ok = stream->Write(response);
  }

  {
    std::unique_lock<std::mutex> lock(mu);
    if (!client_ok) {
      ctx->TryCancel();
    } else if (!cv.wait_for(lock, drain_timeout, [&] { return stdin_done; })) {
      ctx->TryCancel();
    }
  }
  stdin_thread.join();

  if (!client_ok || ctx->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        std::string(method) + ": the client went away before git finished");
  }
  if (exit_code != 0) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(method) + ": cmd wait: exit status " +
                                                        std::to_string(exit_code) + ", stderr: \"" +
                                                        stderr_tail + "\"");
  }
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
