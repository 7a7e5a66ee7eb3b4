#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"

namespace praefect::storagenode {

// A git process whose stdin, stdout and stderr are streamed by the caller
// (git upload-pack / receive-pack behind SSHService). argv is exec'd directly,
// never through a shell; the child gets exactly `env` as its environment and
// its own process group, so Kill() also reaches pack-objects and hooks.
//
// Thread-safety: one thread may own stdin (WriteStdin, CloseStdin) while
// another reads stdout/stderr and calls Wait; Kill may be called from any
// thread at any time (it never signals a reaped, possibly reused, pid). The
// destructor kills and reaps a child that was not waited for.
class SshGitProcess {
 public:
  // REQUIRES: argv non-empty; argv[0] is looked up in the caller's PATH.
  [[nodiscard]] static StatusOr<std::unique_ptr<SshGitProcess>> Spawn(
      const std::vector<std::string>& argv, const std::vector<std::string>& env);
  ~SshGitProcess();
  SshGitProcess(const SshGitProcess&) = delete;
  SshGitProcess& operator=(const SshGitProcess&) = delete;

  // Writes all of `data` to the child's stdin, blocking while its pipe is
  // full (so a slow git slows the client). False when the child no longer
  // reads its stdin; never raises SIGPIPE.
  [[nodiscard]] bool WriteStdin(std::string_view data);
  // Gives the child EOF on stdin. Idempotent.
  void CloseStdin();

  // Descriptors the reader polls. Owned by this object.
  int stdout_fd() const { return stdout_fd_; }
  int stderr_fd() const { return stderr_fd_; }

  // Ends the child's process group: SIGTERM, then SIGKILL if the child has
  // not exited kTerminateGrace later (Wait sends it). SIGTERM first because
  // git removes its lock files on SIGTERM and leaves them on SIGKILL: a
  // receive-pack cancelled while it holds reference locks (waiting for its
  // transaction's vote) would otherwise leave refs/heads/x.lock behind, and
  // every later write of that ref, replication included, fails on it. Safe
  // to call more than once.
  void Kill();
  // Waits for the child and reaps it. Returns its exit code, or -1 when a
  // signal ended it (what Gitaly's ExitStatus reports for a signalled git).
  // REQUIRES: called once, by one thread.
  int Wait();

  static constexpr std::chrono::milliseconds kTerminateGrace{2000};

 private:
  SshGitProcess(pid_t pid, int in_fd, int out_fd, int err_fd)
      : pid_(pid), stdin_fd_(in_fd), stdout_fd_(out_fd), stderr_fd_(err_fd) {}

  const pid_t pid_;
  int stdin_fd_;  // owned by the stdin thread
  const int stdout_fd_;
  const int stderr_fd_;
  std::mutex mu_;
  bool reaped_ = false;  // GUARDED_BY(mu_)
  // When Kill sent SIGTERM (zero: not yet), and whether SIGKILL followed.
  std::chrono::steady_clock::time_point terminated_at_{};  // GUARDED_BY(mu_)
  bool killed_ = false;                                    // GUARDED_BY(mu_)
};

}  // namespace praefect::storagenode
