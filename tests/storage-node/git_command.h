#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "common/status_or.h"

namespace praefect::storagenode {

// How every git process of the node runs: argv exec'd directly (never a
// shell), a fixed environment (no system config, a private HOME and global
// config that marks every directory safe), stdin fed from memory, stderr
// captured in a memory file so it can never block the child.
struct GitEnv {
  std::string git_binary = "git";
  std::string home;  // private HOME; holds the global gitconfig
  // Prepended to PATH: where git finds git-remote-gitaly (the node's own
  // directory), so that ReplicateRepository can fetch gitaly:// URLs.
  std::string path_prefix;
};

// The outcome of a git run that finished.
struct GitResult {
  int exit_code = 0;  // 128 + signal when killed
  std::string out;
  std::string err;
};

// A running child process whose stdout the caller reads as a stream. The
// destructor kills and reaps a child that has not been waited for. Not
// thread-safe: one reader.
class ChildProcess {
 public:
  // Spawns argv[0] (looked up in PATH) with `env` entries added to a clean
  // environment, stdin from `input`.
  [[nodiscard]] static StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv, const std::vector<std::string>& env,
      const std::string& input);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads up to n bytes of stdout; 0 at EOF, -1 on error.
  ssize_t Read(char* buf, size_t n);
  // Reads exactly n bytes unless EOF comes first; returns the count.
  size_t ReadFull(char* buf, size_t n);
  // Closes stdout, waits, and returns exit code and stderr.
  GitResult Wait();
  void Kill();

 private:
  ChildProcess(pid_t pid, int out_fd, int err_fd) : pid_(pid), out_fd_(out_fd), err_fd_(err_fd) {}
  pid_t pid_;
  int out_fd_;
  int err_fd_;
  bool waited_ = false;
};

// The environment entries for git processes.
std::vector<std::string> GitEnvironment(const GitEnv& env);

// argv for `git --git-dir=<repo> <args...>`.
std::vector<std::string> GitArgv(const GitEnv& env, const std::string& repo_path,
                                 const std::vector<std::string>& args);

// Runs git in `repo_path` to completion, collecting stdout (keep it small).
// The Status is an error only when the process could not be run; a non-zero
// exit is reported in the result.
[[nodiscard]] StatusOr<GitResult> RunGit(const GitEnv& env, const std::string& repo_path,
                                         const std::vector<std::string>& args,
                                         const std::string& input = "");

// Runs any program (no repository) the same way; `extra_env` entries
// ("NAME=value") are added to the environment.
[[nodiscard]] StatusOr<GitResult> RunProgram(const GitEnv& env, const std::vector<std::string>& argv,
                                             const std::string& input = "",
                                             const std::vector<std::string>& extra_env = {});

// `text` without trailing newlines and blanks (git's stderr in messages).
std::string TrimTrailing(std::string text);

// Creates env.home with a global gitconfig. Call once at start.
[[nodiscard]] Status PrepareGitHome(const GitEnv& env);

}  // namespace praefect::storagenode
