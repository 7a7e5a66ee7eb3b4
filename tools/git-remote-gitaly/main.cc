// git-remote-gitaly: a git remote helper (gitremote-helpers(7)) for
// gitaly://HOST:PORT/<storage>/<relative path> URLs. It offers only the
// `connect` capability, so git runs its own pack protocol end to end over
// Gitaly's SSHUploadPack / SSHReceivePack streams.
//
// Environment: GITALY_ADDRESS (overrides HOST:PORT), GITALY_TOKEN (v2 token
// secret), GITALY_CONNECT_TIMEOUT (seconds, default 15), GIT_PROTOCOL
// (default version=2 for fetches), GL_ID / GL_USERNAME / GL_REPOSITORY (sent
// with pushes; GL_ID defaults to user-1 because Gitaly refuses an empty one).

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>

#include "connect.h"
#include "remote_url.h"

namespace praefect::gitremote {
namespace {

std::string Env(const char* name, const char* fallback = "") {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

void Say(const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = write(STDOUT_FILENO, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

void Complain(const std::string& text) {
  std::string line = "fatal: git-remote-gitaly: " + text + "\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

// One command line from git, read a byte at a time: after `connect` the same
// descriptor carries the pack protocol, and nothing of it may be swallowed
// by a buffer. False at EOF.
bool ReadLine(std::string* line) {
  line->clear();
  char c;
  while (true) {
    ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return !line->empty();
    if (c == '\n') return true;
    line->push_back(c);
  }
}

int Run(int argc, char** argv) {
  if (argc < 2) {
    Complain("usage: git-remote-gitaly <remote> [<url>] (git runs this for gitaly:// URLs)");
    return 128;
  }
  const std::string url = argc >= 3 ? argv[2] : argv[1];
  StatusOr<Remote> remote = ParseRemote(url, Env("GITALY_ADDRESS"));
  if (!remote.ok()) {
    Complain(remote.status().message());
    return 128;
  }

  ConnectOptions options;
  options.token = Env("GITALY_TOKEN");
  // git does not pass GIT_PROTOCOL to connect helpers; protocol v2 (git's
  // default since 2.26) works over `connect` and lets git filter refs.
  options.git_protocol = Env("GIT_PROTOCOL", "version=2");
  const std::string timeout = Env("GITALY_CONNECT_TIMEOUT");
  if (!timeout.empty()) options.connect_timeout = std::chrono::seconds(std::atoi(timeout.c_str()));
  options.gl_id = Env("GL_ID", "user-1");
  options.gl_username = Env("GL_USERNAME", Env("USER", "git").c_str());
  options.gl_repository = Env("GL_REPOSITORY");

  std::string line;
  while (ReadLine(&line)) {
    if (line.empty()) return 0;
    if (line == "capabilities") {
      Say("connect\n\n");
    } else if (line.rfind("option ", 0) == 0) {
      Say("unsupported\n");
    } else if (line.rfind("connect ", 0) == 0) {
      std::string service = line.substr(8);
      if (service != "git-upload-pack" && service != "git-receive-pack") {
        Complain("cannot connect to " + service + ": only git-upload-pack and git-receive-pack are served");
        return 128;
      }
      return Connect(*remote, service, options);
    } else {
      Complain("unknown command from git: \"" + line + "\"");
      return 128;
    }
  }
  return 0;
}

}  // namespace
}  // namespace praefect::gitremote

int main(int argc, char** argv) {
  // A git that hangs up early must not kill us mid-write; writes report it.
  signal(SIGPIPE, SIG_IGN);
  int code = praefect::gitremote::Run(argc, argv);
  // The stdin pump may still be blocked in read(2); do not wait for it.
  _exit(code);
}
