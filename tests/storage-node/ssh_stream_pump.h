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

// What became of a bidi stream pumped around git by PumpGitStream.
struct GitStreamOutcome {
  // False when the client went away (or the call was cancelled) before git
  // finished and the client half-closed.
  bool client_ok = true;
  int exit_code = 0;        // as SshGitProcess::Wait
  std::string stderr_tail;  // the last kSshStderrTail bytes of git's stderr
};

// Runs one bidi stream around a started git process, the part SSHService
// and SmartHTTPService share: `stdin_of(request)` of every later request goes
// to git (EOF when the client half-closes); git's output goes to `send` as
// PumpSshOutput gives it; once git exited and its output was sent,
// `after_exit(exit_code)` may send a last message (false: the client went
// away).
//
// A client that never half-closes after git has exited gets `drain_timeout`
// to do so before the call is cancelled: grpc++'s synchronous API cannot end
// a call while a Read is pending. Uses one extra thread for stdin.
template <typename Response, typename Request, typename StdinOf>
GitStreamOutcome PumpGitStream(grpc::ServerContext* ctx, grpc::ServerReaderWriter<Response, Request>* stream,
                               SshGitProcess& process, StdinOf stdin_of,
                               const std::function<bool(SshOutput, std::string_view)>& send,
                               const std::function<bool(int)>& after_exit, std::chrono::milliseconds drain_timeout) {
  std::mutex mu;
  std::condition_variable cv;
  bool stdin_done = false;  // GUARDED_BY(mu)

  std::thread stdin_thread([&] {
    Request request;
    bool git_reads = true;
    while (stream->Read(&request)) {
      const std::string& data = stdin_of(request);
      if (git_reads && !data.empty()) {
        git_reads = process.WriteStdin(data);
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

  GitStreamOutcome outcome;
  outcome.client_ok = PumpSshOutput(process, send, [ctx] { return ctx->IsCancelled(); }, &outcome.stderr_tail);
  outcome.exit_code = process.Wait();
  if (outcome.client_ok) outcome.client_ok = after_exit(outcome.exit_code);

  {
    std::unique_lock<std::mutex> lock(mu);
    if (!outcome.client_ok) {
      ctx->TryCancel();
    } else if (!cv.wait_for(lock, drain_timeout, [&] { return stdin_done; })) {
      ctx->TryCancel();
    }
  }
  stdin_thread.join();
  if (ctx->IsCancelled()) outcome.client_ok = false;
  return outcome;
}

// Runs one SSHService bidi stream around a started git process, as Gitaly
// does: every later request's stdin goes to git (EOF when the client
// half-closes), stdout/stderr come back as responses; a non-zero exit sends
// an exit_status response and ends the call with INTERNAL, a zero exit ends
// it OK without exit_status (clients read a missing one as 0).
template <typename Response, typename Request>
grpc::Status PumpSshStream(grpc::ServerContext* ctx, grpc::ServerReaderWriter<Response, Request>* stream,
                           SshGitProcess& process, std::string_view method,
                           std::chrono::milliseconds drain_timeout) {
  GitStreamOutcome outcome = PumpGitStream(
      ctx, stream, process, [](const Request& request) -> const std::string& { return request.stdin(); },
      [&](SshOutput which, std::string_view data) {
        Response response;
        if (which == SshOutput::kStdout) {
          response.set_stdout(data.data(), data.size());
        } else {
          response.set_stderr(data.data(), data.size());
        }
        return stream->Write(response);
      },
      [&](int exit_code) {
        if (exit_code == 0) return true;
        Response response;
        response.mutable_exit_status()->set_value(exit_code);
        return stream->Write(response);
      },
      drain_timeout);

  if (!outcome.client_ok) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        std::string(method) + ": the client went away before git finished");
  }
  if (outcome.exit_code != 0) {
    return grpc::Status(grpc::StatusCode::INTERNAL, std::string(method) + ": cmd wait: exit status " +
                                                        std::to_string(outcome.exit_code) + ", stderr: \"" +
                                                        outcome.stderr_tail + "\"");
  }
  return grpc::Status::OK;
}

}  // namespace praefect::storagenode
