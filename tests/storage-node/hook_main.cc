// praefect-storage-node-hook: the hooks git runs for the node's
// transactional calls (hook_protocol.h), as Gitaly's gitaly-hooks:
//
// * reference-transaction prepared|committed: votes SHA-1 of its stdin
//   (git's "<old> <new> <ref>" lines) in that phase; "aborted" and batches
//   that only force-delete (zero to zero, git's packed-refs pass) do not
//   vote. An answer other than COMMIT fails the hook, so that git aborts the
//   update ("transaction was aborted" / "transaction was stopped").
// * pre-receive, post-receive: on the primary only, run the repository's
//   own hook (custom_hooks/<name>, Gitaly's layout, then hooks/<name>, where
//   the node's repositories kept theirs before); when it fails the
//   transaction is stopped, so the secondaries get STOP. Then every node
//   votes SHA-1("synchronize <name> hook") in the synchronized phase.
// * update: on the primary only, the repository's own update hook; a
//   failure stops the transaction.
//
// Linked to under each hook's name; which hook it is comes from argv[0].
// Deliberately small and free of grpc++ and OpenSSL (the node hashes), so
// that its start costs little: it runs several times per push.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "hook_protocol.h"

extern char** environ;

namespace {

namespace hook = praefect::storagenode::hook;

const char* Env(std::string_view name) { return std::getenv(std::string(name).c_str()); }

std::string ReadAll(int fd) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// One request to the node; returns its answer line, or "error <why>".
std::string Ask(const std::string& request, std::string_view payload) {
  const char* path = Env(hook::kSocketEnv);
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path == nullptr || std::strlen(path) >= sizeof sun.sun_path)
    return "error " + std::string(hook::kSocketEnv) + " is unset or too long";
  std::memcpy(sun.sun_path, path, std::strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
    std::string why = std::strerror(errno);
    if (fd >= 0) close(fd);
    return "error cannot reach the storage node at " + std::string(path) + ": " + why +
           " (did the node stop while git ran?)";
  }
  if (!WriteAll(fd, request) || !WriteAll(fd, payload)) {
    close(fd);
    return "error the storage node closed the hook socket before reading the request";
  }
  std::string answer = ReadAll(fd);
  close(fd);
  while (!answer.empty() && answer.back() == '\n') answer.pop_back();
  if (answer.empty()) return "error the storage node closed the hook socket without an answer";
  return answer;
}

// 0 when the node answered COMMIT (or OK); otherwise says why and returns 1.
int Verdict(const char* hook_name, const std::string& answer) {
  if (answer == hook::kAnswerCommit || answer == hook::kAnswerOk) return 0;
  if (answer == hook::kAnswerAbort) std::fprintf(stderr, "%s: transaction was aborted\n", hook_name);
  else if (answer == hook::kAnswerStop) std::fprintf(stderr, "%s: transaction was stopped\n", hook_name);
  else std::fprintf(stderr, "%s: %s\n", hook_name, answer.c_str());
  return 1;
}

int Vote(const char* hook_name, std::string_view phase, std::string_view payload) {
  std::string request = std::string(hook::kVote) + " " + Env(hook::kTokenEnv) + " " + std::string(phase) + " " +
                        std::to_string(payload.size()) + "\n";
  return Verdict(hook_name, Ask(request, payload));
}

void StopTransaction(const char* hook_name) {
  std::string answer = Ask(std::string(hook::kStop) + " " + Env(hook::kTokenEnv) + "\n", "");
  if (answer != hook::kAnswerOk)
    std::fprintf(stderr, "%s: could not stop the transaction: %s\n", hook_name, answer.c_str());
}

bool IsZeroOid(std::string_view oid) { return !oid.empty() && oid.find_first_not_of('0') == std::string_view::npos; }

// Every line "<zero> <zero> <ref>": git's second pass of a deletion.
bool OnlyForceDeletions(std::string_view lines) {
  while (!lines.empty()) {
    size_t nl = lines.find('\n');
    std::string_view line = lines.substr(0, nl);
    lines.remove_prefix(nl == std::string_view::npos ? lines.size() : nl + 1);
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return false;
    if (!IsZeroOid(line.substr(0, sp1)) || !IsZeroOid(line.substr(sp1 + 1, sp2 - sp1 - 1))) return false;
  }
  return true;
}

// Runs one program with `args`, `input` on its stdin, stdout and stderr
// shared with git (which relays them to the client); returns its exit code.
int RunProgram(const std::string& path, const std::vector<std::string>& args, const std::string& input) {
  int in[2];
  if (pipe2(in, O_CLOEXEC) != 0) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  std::vector<char*> argv = {const_cast<char*>(path.c_str())};
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(in[0]);
  if (rc != 0) {
    close(in[1]);
    std::fprintf(stderr, "cannot run the repository hook %s: %s\n", path.c_str(), std::strerror(rc));
    return 1;
  }
  (void)WriteAll(in[1], input);  // a hook that does not read its input is fine
  close(in[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

// The repository's own hook `name`: custom_hooks/ (Gitaly's layout), then
// hooks/. 0 when none exists or every one succeeded.
int RunRepositoryHooks(const std::string& name, const std::vector<std::string>& args, const std::string& input) {
  const char* repo = Env(hook::kRepositoryEnv);
  if (repo == nullptr) return 0;
  for (const char* dir : {"/custom_hooks/", "/hooks/"}) {
    std::string path = repo + std::string(dir) + name;
    if (access(path.c_str(), X_OK) != 0) continue;
    if (int rc = RunProgram(path, args, input); rc != 0) return rc;
  }
  return 0;
}

bool IsPrimary() {
  const char* primary = Env(hook::kPrimaryEnv);
  return primary != nullptr && std::strcmp(primary, "1") == 0;
}

int ReferenceTransaction(int argc, char** argv) {
  std::string changes = ReadAll(STDIN_FILENO);
  const std::string state = argc > 1 ? argv[1] : "";
  if (state != hook::kPrepared && state != hook::kCommitted) return 0;  // "aborted": nothing to vote on
  if (OnlyForceDeletions(changes)) return 0;
  return Vote("reference-transaction", state, changes);
}

int ReceiveHook(const std::string& name) {
  std::string changes = ReadAll(STDIN_FILENO);
  if (IsPrimary()) {
    if (int rc = RunRepositoryHooks(name, {}, changes); rc != 0) {
      StopTransaction(name.c_str());
      return rc;
    }
  }
  return Vote(name.c_str(), hook::kSynchronized, "synchronize " + name + " hook");
}

int UpdateHook(int argc, char** argv) {
  if (!IsPrimary()) return 0;
  std::vector<std::string> args(argv + 1, argv + argc);
  int rc = RunRepositoryHooks("update", args, "");
  if (rc != 0) StopTransaction("update");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  std::string name = argc > 0 ? argv[0] : "";
  name = name.substr(name.rfind('/') + 1);
  if (Env(hook::kSocketEnv) == nullptr || Env(hook::kTokenEnv) == nullptr) {
    std::fprintf(stderr,
                 "praefect-storage-node-hook: %s and %s are not set: this program is the hook git runs for "
                 "praefect-storage-node's transactional calls, not a command to run by hand\n",
                 std::string(hook::kSocketEnv).c_str(), std::string(hook::kTokenEnv).c_str());
    return 1;
  }
  if (name == "reference-transaction") return ReferenceTransaction(argc, argv);
  if (name == "pre-receive" || name == "post-receive") return ReceiveHook(name);
  if (name == "update") return UpdateHook(argc, argv);
  std::fprintf(stderr, "praefect-storage-node-hook: run as \"%s\", which is no hook it provides\n", name.c_str());
  return 1;
}
