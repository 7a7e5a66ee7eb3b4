#include "ssh_git_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace praefect::storagenode {
namespace {

// Large pipes let git run ahead of the gRPC stream by a bounded amount.
constexpr int kStdoutPipeSize = 1 << 20;

std::vector<char*> CStrings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const std::string& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) close(fd);
  }
}

}  // namespace

StatusOr<std::unique_ptr<SshGitProcess>> SshGitProcess::Spawn(const std::vector<std::string>& argv,
                                                              const std::vector<std::string>& env) {
  // stdin is a socket so that writes can use MSG_NOSIGNAL: a git that exits
  // early must not kill the server with SIGPIPE, and the server's signal
  // dispositions are not ours to change. Every descriptor is close-on-exec,
  // so concurrent spawns never inherit another stream's pipe ends.
  int in[2] = {-1, -1};
  int out[2] = {-1, -1};
  int err[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
      pipe2(err, O_CLOEXEC) != 0) {
    std::string why = std::strerror(errno);
    CloseAll({in[0], in[1], out[0], out[1], err[0], err[1]});
    return Internal("cannot create pipes for " + argv[0] + ": " + why);
  }
  shutdown(in[1], SHUT_RD);
  (void)fcntl(out[0], F_SETPIPE_SZ, kStdoutPipeSize);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty;
  sigset_t all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_env = CStrings(env);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, c_argv[0], &actions, &attr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  CloseAll({in[0], out[1], err[1]});
  if (rc != 0) {
    CloseAll({in[1], out[0], err[0]});
    return Unavailable("cannot start " + argv[0] + ": " + std::strerror(rc) +
                       " (is git installed and in PATH?)");
  }
  return std::unique_ptr<SshGitProcess>(new SshGitProcess(pid, in[1], out[0], err[0]));
}

SshGitProcess::~SshGitProcess() {
  CloseStdin();
  bool reaped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reaped = reaped_;
  }
  if (!reaped) {
    Kill();
    (void)Wait();
  }
  CloseAll({stdout_fd_, stderr_fd_});
}

bool SshGitProcess::WriteStdin(std::string_view data) {
  while (!data.empty()) {
    if (stdin_fd_ < 0) return false;
    ssize_t n = send(stdin_fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void SshGitProcess::CloseStdin() {
  if (stdin_fd_ >= 0) {
    close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

void SshGitProcess::Kill() {
  std::lock_guard<std::mutex> lock(mu_);
  if (reaped_ || terminated_at_ != std::chrono::steady_clock::time_point{}) return;
  kill(-pid_, SIGTERM);
  terminated_at_ = std::chrono::steady_clock::now();
}

int SshGitProcess::Wait() {
  // Wait without reaping first, so that the pid stays ours while Kill may
  // still signal it; reap under the lock. A pidfd wakes us when the child
  // exits; the timeout lets us escalate a SIGTERM the child outlives.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  for (;;) {
    siginfo_t info;
    info.si_pid = 0;
    int r = waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT | WNOHANG);
    if (r != 0 && errno == EINTR) continue;
    if (r != 0 || info.si_pid != 0) break;  // exited (or not our child any more)
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!killed_ && terminated_at_ != std::chrono::steady_clock::time_point{} &&
          std::chrono::steady_clock::now() - terminated_at_ >= kTerminateGrace) {
        kill(-pid_, SIGKILL);
        killed_ = true;
      }
    }
    if (pidfd >= 0) {
      pollfd pfd = {pidfd, POLLIN, 0};
      (void)poll(&pfd, 1, 100);
    } else {
      usleep(10 * 1000);  // no pidfd (kernel before 5.3): poll the child
    }
  }
  if (pidfd >= 0) close(pidfd);
  std::lock_guard<std::mutex> lock(mu_);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  if (r < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace praefect::storagenode
