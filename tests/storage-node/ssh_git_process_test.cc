// How the node ends a git it no longer wants (a cancelled SSH call): SIGTERM
// first, so that git removes the lock files it holds; SIGKILL only for a
// child that outlives kTerminateGrace.
#include "ssh_git_process.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "test_support.h"

using praefect::storagenode::SshGitProcess;

namespace {

std::vector<std::string> Env() {
  const char* path = getenv("PATH");
  return {std::string("PATH=") + (path != nullptr ? path : "/usr/bin:/bin"), "HOME=/nonexistent",
          "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"};
}

// Reads stdout until `want` arrived (or EOF).
std::string ReadUntil(SshGitProcess& p, const std::string& want) {
  std::string out;
  char buf[4096];
  while (out.find(want) == std::string::npos) {
    ssize_t n = read(p.stdout_fd(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string Run(const std::string& command) {
  std::string out;
  FILE* f = popen(command.c_str(), "r");
  if (f == nullptr) return out;
  char buf[256];
  while (fgets(buf, sizeof buf, f) != nullptr) out += buf;
  pclose(f);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

// The case that matters: git holding a reference lock (a transaction
// prepared, as receive-pack is while its hook waits for the vote) is ended,
// and the lock file goes with it.
static void CancelledGitLeavesNoLockFile(void**) {
  char dir_template[] = "/tmp/ssh-git-process-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string repo = dir + "/repo.git";
  expect_that(system(("git init -q --bare " + repo).c_str()) == 0, "git init");
  const std::string git = "GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t "
                          "git --git-dir=" + repo;
  const std::string tree = Run(git + " mktree </dev/null");
  const std::string commit = Run(git + " commit-tree -m one " + tree);
  expect_that(commit.size() == 40, "a commit id: " + commit);

  auto p = SshGitProcess::Spawn({"git", "--git-dir=" + repo, "update-ref", "--stdin"}, Env());
  assert_status_ok(p.status());
  const std::string commands = "start\nupdate refs/heads/x " + commit + "\nprepare\n";
  expect_that((*p)->WriteStdin(commands), "git takes the commands");
  std::string out = ReadUntil(**p, "prepare: ok\n");
  expect_that(out.find("prepare: ok\n") != std::string::npos, "git prepared the transaction: " + out);
  const std::string lock = repo + "/refs/heads/x.lock";
  expect_that(Exists(lock), "git holds " + lock + " once prepared");

  auto start = std::chrono::steady_clock::now();
  (*p)->Kill();
  int code = (*p)->Wait();
  auto took = std::chrono::steady_clock::now() - start;
  expect_that(code == -1, "a signal ended git: exit " + std::to_string(code));
  expect_that(took < SshGitProcess::kTerminateGrace, "SIGTERM was enough: no wait for the grace period");
  expect_that(!Exists(lock), "no " + lock + " left behind: git removed it on SIGTERM");
  expect_that(!Exists(repo + "/refs/heads/x"), "the reference was not written");
  expect_that(system(("rm -rf " + dir).c_str()) == 0, "cleanup");
}

// A child that ignores SIGTERM is killed once the grace period is over.
static void IgnoredTerminationEscalates(void**) {
  auto p = SshGitProcess::Spawn({"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"}, Env());
  assert_status_ok(p.status());
  expect_that(ReadUntil(**p, "ready\n") == "ready\n", "the child runs with SIGTERM ignored");
  auto start = std::chrono::steady_clock::now();
  (*p)->Kill();
  (*p)->Kill();  // a second call changes nothing
  int code = (*p)->Wait();
  auto took = std::chrono::steady_clock::now() - start;
  expect_that(code == -1, "SIGKILL ended it: exit " + std::to_string(code));
  expect_that(took >= SshGitProcess::kTerminateGrace, "not before the grace period");
  expect_that(took < SshGitProcess::kTerminateGrace + std::chrono::seconds(3), "soon after it");
}

// A child that exits by itself is reaped at once, with its exit code, and
// Kill afterwards signals nothing.
static void ExitedChildIsReaped(void**) {
  auto p = SshGitProcess::Spawn({"sh", "-c", "exit 3"}, Env());
  assert_status_ok(p.status());
  auto start = std::chrono::steady_clock::now();
  expect_that((*p)->Wait() == 3, "the exit code");
  expect_that(std::chrono::steady_clock::now() - start < std::chrono::seconds(1), "no polling delay");
  (*p)->Kill();
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(CancelledGitLeavesNoLockFile),
      cmocka_unit_test(IgnoredTerminationEscalates),
      cmocka_unit_test(ExitedChildIsReaped),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
