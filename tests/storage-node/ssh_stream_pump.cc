#include "ssh_stream_pump.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace praefect::storagenode {

bool PumpSshOutput(SshGitProcess& process, const std::function<bool(SshOutput, std::string_view)>& send,
                   const std::function<bool()>& cancelled, std::string* stderr_tail) {
  auto buffer = std::make_unique<char[]>(kSshChunkSize);
  pollfd fds[2] = {{process.stdout_fd(), POLLIN, 0}, {process.stderr_fd(), POLLIN, 0}};
  const SshOutput kinds[2] = {SshOutput::kStdout, SshOutput::kStderr};
  int open = 2;
  while (open > 0) {
    int ready = poll(fds, 2, kSshCancelCheckMillis);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0 || (ready == 0 && cancelled())) {
      process.Kill();
      return false;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = read(fds[i].fd, buffer.get(), kSshChunkSize);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        fds[i].fd = -1;  // EOF (or a read error, which ends the stream the same way)
        --open;
        continue;
      }
      std::string_view chunk(buffer.get(), static_cast<size_t>(n));
      if (kinds[i] == SshOutput::kStderr) {
        stderr_tail->append(chunk);
        if (stderr_tail->size() > kSshStderrTail) {
          stderr_tail->erase(0, stderr_tail->size() - kSshStderrTail);
        }
      }
      if (!send(kinds[i], chunk)) {
        process.Kill();
        return false;
      }
    }
  }
  return true;
}

}  // namespace praefect::storagenode
