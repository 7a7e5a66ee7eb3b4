#include "systemd/fd_acceptor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log/log.h"

namespace praefect::systemd {

bool PrepareAcceptedFd(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return false;
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return false;
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
      (addr.ss_family == AF_INET || addr.ss_family == AF_INET6)) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return true;
}

StatusOr<std::unique_ptr<FdAcceptor>> FdAcceptor::Start(std::vector<int> listen_fds, HandOff hand_off) {
  auto close_all = [&listen_fds] {
    for (int fd : listen_fds) close(fd);
  };
  for (int fd : listen_fds) {
    int flags = fcntl(fd, F_GETFL);
    // Non-blocking, so that a connection reset between poll() and accept()
    // cannot block the loop.
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      Status st = Internal("socket passed by systemd (fd " + std::to_string(fd) +
                           "): cannot make it non-blocking: " + std::strerror(errno));
      close_all();
      return st;
    }
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    Status st = Internal(std::string("socket acceptor: eventfd: ") + std::strerror(errno));
    close_all();
    return st;
  }
  return std::unique_ptr<FdAcceptor>(new FdAcceptor(std::move(listen_fds), wake, std::move(hand_off)));
}

FdAcceptor::FdAcceptor(std::vector<int> listen_fds, int wake_fd, HandOff hand_off)
    : listen_fds_(std::move(listen_fds)), wake_fd_(wake_fd), hand_off_(std::move(hand_off)), thread_([this] { Run(); }) {}

FdAcceptor::~FdAcceptor() {
  Stop();
  close(wake_fd_);
}

void FdAcceptor::Stop() {
  if (stopped_.exchange(true)) return;
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) {
    // An eventfd write only fails on overflow, which one write cannot reach.
  }
  thread_.join();
  for (int fd : listen_fds_) close(fd);
}

void FdAcceptor::Run() {
  std::vector<pollfd> fds;
  fds.push_back({wake_fd_, POLLIN, 0});
  for (int fd : listen_fds_) fds.push_back({fd, POLLIN, 0});
  bool backoff = false;
  while (!stopped_.load()) {
    if (backoff) {
      // Out of descriptors: only wait for Stop() for a while.
      poll(fds.data(), 1, 100);
      backoff = false;
      continue;
    }
    int n = poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno != EINTR) {
      log::Error("socket acceptor: poll failed; connections on the sockets passed by systemd are no longer accepted",
                 {{"error", std::strerror(errno)}});
      return;
    }
    if (stopped_.load()) return;
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      // A bounded batch per wake-up, so one busy socket cannot starve the other.
      for (int k = 0; k < 64; ++k) {
        int conn = accept4(fds[i].fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (conn < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            // Out of descriptors: the pending connection stays queued; retry
            // later instead of spinning on a socket that stays readable.
            log::Warn("cannot accept a connection: out of file descriptors or memory; raise LimitNOFILE= "
                      "(or ulimit -n) if this persists",
                      {{"error", std::strerror(errno)}});
            backoff = true;
          }
          break;  // EAGAIN, ECONNABORTED, EINTR: nothing more to take now
        }
        if (!PrepareAcceptedFd(conn)) {
          close(conn);
          continue;
        }
        hand_off_(conn);
      }
    }
  }
}

}  // namespace praefect::systemd
