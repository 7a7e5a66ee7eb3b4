#include "scratch_repo.h"

#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>

#include "fs_util.h"
#include "git_command.h"

namespace praefect::storagenode::testing {
namespace {

const GitEnv& Env() {
  static GitEnv env = [] {
    GitEnv e;
    e.home = "/tmp/storage-node-test-home-" + std::to_string(getpid());
    (void)PrepareGitHome(e);
    static std::string home = e.home;
    std::atexit([] { (void)RemoveTree(home); });
    return e;
  }();
  return env;
}

}  // namespace

std::string Git(const std::vector<std::string>& args, const std::string& input, bool allow_fail, int* exit_code) {
  std::vector<std::string> argv = {"git", "-c", "user.name=Test", "-c", "user.email=test@example.com",
                                   "-c", "init.defaultBranch=main", "-c", "core.fsync=none"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto env = GitEnvironment(Env());
  env.push_back("GIT_AUTHOR_DATE=1700000000 +0000");
  env.push_back("GIT_COMMITTER_DATE=1700000000 +0000");
  auto child = ChildProcess::Spawn(argv, env, input);
  if (!child.ok()) {
    std::fprintf(stderr, "git: %s\n", child.status().message().c_str());
    std::abort();
  }
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = (*child)->Read(buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  GitResult r = (*child)->Wait();
  if (exit_code) *exit_code = r.exit_code;
  if (r.exit_code != 0 && !allow_fail) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    std::fprintf(stderr, "git%s failed (%d): %s\n", cmd.c_str(), r.exit_code, r.err.c_str());
    std::abort();
  }
  return out;
}

void Run(const std::vector<std::string>& argv) {
  auto r = RunProgram(Env(), argv);
  if (!r.ok() || r->exit_code != 0) {
    std::fprintf(stderr, "%s failed: %s\n", argv[0].c_str(), r.ok() ? r->err.c_str() : r.status().message().c_str());
    std::abort();
  }
}

std::string PushCommits(const std::string& bare, const std::string& work, const std::string& branch,
                        int commits, bool tags) {
  Git({"clone", "--quiet", bare, work}, "", /*allow_fail=*/true);  // an empty clone warns
  int has_branch = 0;
  Git({"-C", work, "rev-parse", "--verify", "--quiet", "origin/" + branch}, "", true, &has_branch);
  if (has_branch == 0) Git({"-C", work, "checkout", "--quiet", "-B", branch, "origin/" + branch});
  else Git({"-C", work, "checkout", "--quiet", "--orphan", branch}, "", true);
  for (int i = 0; i < commits; ++i) {
    Git({"-C", work, "commit", "--quiet", "--allow-empty", "-m", branch + " commit " + std::to_string(i) +
                                                                    "\n\nbody of the commit"});
    if (tags) Git({"-C", work, "tag", branch + "-v" + std::to_string(i)});
  }
  std::vector<std::string> push = {"-C", work, "push", "--quiet", "origin", branch};
  if (tags) push.push_back("--tags");
  Git(push);
  std::string tip = Git({"-C", work, "rev-parse", "HEAD"});
  return tip.substr(0, 40);
}

std::string ReferenceChecksum(const std::string& bare) {
  std::string lines = Git({"--git-dir=" + bare, "for-each-ref", "--format=%(objectname) %(refname)",
                           "refs/heads", "refs/tags"});
  int rc = 0;
  std::string head = Git({"--git-dir=" + bare, "rev-parse", "--verify", "--quiet", "HEAD"}, "", true, &rc);
  if (rc == 0) lines += head.substr(0, 40) + " HEAD\n";
  unsigned char sum[20] = {0};
  bool any = false;
  size_t pos = 0;
  while (pos < lines.size()) {
    size_t nl = lines.find('\n', pos);
    std::string line = lines.substr(pos, nl - pos);
    pos = nl + 1;
    unsigned char d[20];
    SHA1(reinterpret_cast<const unsigned char*>(line.data()), line.size(), d);
    for (int i = 0; i < 20; ++i) sum[i] ^= d[i];
    any = true;
  }
  std::string hex;
  char b[3];
  bool leading = true;
  for (unsigned char c : sum) {
    if (leading && c == 0) continue;
    leading = false;
    std::snprintf(b, sizeof b, "%02x", c);
    hex += b;
  }
  if (!any || hex.empty()) return std::string(40, '0');
  return hex;
}

std::string PktLine(const std::string& data) {
  char length[5];
  std::snprintf(length, sizeof length, "%04zx", data.size() + 4);
  return length + data;
}

std::string NoiseBytes(size_t size, uint64_t seed) {
  std::string data(size, '\0');
  uint64_t x = seed | 1;
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    data[i] = static_cast<char>(x);
  }
  return data;
}

}  // namespace praefect::storagenode::testing
