#include "git_command.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

extern char** environ;

namespace praefect::storagenode {
namespace {

Status Errno(const std::string& what) { return Internal(what + ": " + std::strerror(errno)); }

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string ReadMemFile(int fd) {
  std::string s;
  if (lseek(fd, 0, SEEK_SET) < 0) return s;
  char buf[4096];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    s.append(buf, static_cast<size_t>(r));
  }
  return s;
}

}  // namespace

std::vector<std::string> GitEnvironment(const GitEnv& env) {
  std::vector<std::string> e = {
      "GIT_CONFIG_NOSYSTEM=1",
      "HOME=" + env.home,
      "GIT_CONFIG_GLOBAL=" + env.home + "/gitconfig",
      "GIT_TERMINAL_PROMPT=0",
      "LANG=C",
      "LC_ALL=C",
  };
  const char* path = std::getenv("PATH");
  std::string search = path != nullptr ? path : "/usr/bin:/bin";
  if (!env.path_prefix.empty()) search = env.path_prefix + ":" + search;
  e.push_back("PATH=" + search);
  // git-remote-gitaly's dial timeout, for tests that dial dead addresses.
  if (const char* timeout = std::getenv("GITALY_CONNECT_TIMEOUT"))
    e.push_back(std::string("GITALY_CONNECT_TIMEOUT=") + timeout);
  return e;
}

std::vector<std::string> GitArgv(const GitEnv& env, const std::string& repo_path,
                                 const std::vector<std::string>& args) {
  std::vector<std::string> argv = {env.git_binary, "--git-dir=" + repo_path};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string TrimTrailing(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

Status PrepareGitHome(const GitEnv& env) {
  if (mkdir(env.home.c_str(), 0700) != 0 && errno != EEXIST) return Errno("creating " + env.home);
  std::ofstream cfg(env.home + "/gitconfig", std::ios::trunc);
  // safe.directory is ignored on the command line; the global file is the
  // narrowest place git honours it.
  cfg << "[safe]\n\tdirectory = *\n[core]\n\tfsync = all\n";
  if (!cfg) return Internal("writing " + env.home + "/gitconfig");
  return Status::Ok();
}

StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(const std::vector<std::string>& argv,
                                                            const std::vector<std::string>& env,
                                                            const std::string& input) {
  int in_fd = memfd_create("git-stdin", MFD_CLOEXEC);
  int err_fd = memfd_create("git-stderr", MFD_CLOEXEC);
  int out[2] = {-1, -1};
  auto cleanup = [&] {
    for (int fd : {in_fd, err_fd, out[0], out[1]})
      if (fd >= 0) close(fd);
  };
  if (in_fd < 0 || err_fd < 0 || pipe2(out, O_CLOEXEC) != 0) {
    Status st = Errno("creating pipes for " + argv[0]);
    cleanup();
    return st;
  }
  if (!WriteAll(in_fd, input.data(), input.size()) || lseek(in_fd, 0, SEEK_SET) < 0) {
    Status st = Errno("writing stdin of " + argv[0]);
    cleanup();
    return st;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t def;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &def);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  // posix_spawnp looks argv[0] up in the caller's PATH.
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0].c_str(), &fa, &attr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(in_fd);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    close(err_fd);
    return Internal("running " + argv[0] + ": " + std::strerror(rc));
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, out[0], err_fd));
}

ChildProcess::~ChildProcess() {
  if (!waited_) {
    Kill();
    Wait();
  }
}

ssize_t ChildProcess::Read(char* buf, size_t n) {
  for (;;) {
    ssize_t r = read(out_fd_, buf, n);
    if (r < 0 && errno == EINTR) continue;
    return r;
  }
}

size_t ChildProcess::ReadFull(char* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = Read(buf + got, n - got);
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

void ChildProcess::Kill() {
  if (!waited_) kill(pid_, SIGKILL);
}

GitResult ChildProcess::Wait() {
  GitResult result;
  if (waited_) return result;
  waited_ = true;
  close(out_fd_);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.err = ReadMemFile(err_fd_);
  close(err_fd_);
  return result;
}

StatusOr<GitResult> RunProgram(const GitEnv& env, const std::vector<std::string>& argv,
                               const std::string& input, const std::vector<std::string>& extra_env) {
  std::vector<std::string> environment = GitEnvironment(env);
  environment.insert(environment.end(), extra_env.begin(), extra_env.end());
  auto child = ChildProcess::Spawn(argv, environment, input);
  if (!child.ok()) return child.status();
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t r = (*child)->Read(buf, sizeof buf);
    if (r <= 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  GitResult result = (*child)->Wait();
  result.out = std::move(out);
  return result;
}

StatusOr<GitResult> RunGit(const GitEnv& env, const std::string& repo_path,
                           const std::vector<std::string>& args, const std::string& input) {
  return RunProgram(env, GitArgv(env, repo_path, args), input);
}

}  // namespace praefect::storagenode
