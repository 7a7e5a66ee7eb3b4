#include "systemd/bridge_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "log/log.h"

namespace praefect::systemd {

StatusOr<std::unique_ptr<BridgeLoop>> BridgeLoop::Create(int listen_fd, const std::atomic<SSL_CTX*>* ctx, HandOff hand_off,
                                                         TlsBridgeOptions options) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return Internal(std::string("TLS bridge: epoll_create1: ") + std::strerror(errno));
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    close(ep);
    return Internal(std::string("TLS bridge: eventfd: ") + std::strerror(errno));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  int rc = epoll_ctl(ep, EPOLL_CTL_ADD, wake, &ev);
  if (rc == 0) {
    // One loop is woken per pending connection, not all of them.
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenId;
    rc = epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev);
  }
  if (rc != 0) {
    Status st = Internal(std::string("TLS bridge: epoll_ctl: ") + std::strerror(errno));
    close(wake);
    close(ep);
    return st;
  }
  return std::unique_ptr<BridgeLoop>(new BridgeLoop(ep, wake, listen_fd, ctx, std::move(hand_off), options));
}

BridgeLoop::BridgeLoop(int epoll_fd, int wake_fd, int listen_fd, const std::atomic<SSL_CTX*>* ctx, HandOff hand_off,
                       TlsBridgeOptions options)
    : epoll_fd_(epoll_fd),
      wake_fd_(wake_fd),
      listen_fd_(listen_fd),
      ctx_(ctx),
      hand_off_(std::move(hand_off)),
      options_(options),
      thread_([this] { Run(); }) {}

BridgeLoop::~BridgeLoop() {
  stop_.store(true);
  Wake();
  thread_.join();
  conns_.clear();
  close(wake_fd_);
  close(epoll_fd_);
}

void BridgeLoop::Wake() {
  uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) {
    // Only fails when the counter would overflow: a wake-up is pending anyway.
  }
}

void BridgeLoop::StopAccepting() {
  stop_accepting_.store(true);
  Wake();
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return accept_stopped_; });
}

void BridgeLoop::Run() {
  epoll_event events[64];
  while (!stop_.load()) {
    int timeout_ms = -1;
    if (!handshakes_.empty()) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(handshakes_.front().first - Clock::now());
      timeout_ms = left.count() < 0 ? 0 : static_cast<int>(left.count());
    }
    int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      log::Error("TLS bridge: epoll_wait failed; its connections are closed", {{"error", std::strerror(errno)}});
      break;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[i].data.u64;
      if (id == kWakeId) {
        uint64_t count;
        if (read(wake_fd_, &count, sizeof count) < 0) {
          // EAGAIN: another wake-up already drained it.
        }
        if (stop_accepting_.load() && accepting_) DropHandshakes();
      } else if (id == kListenId) {
        if (accepting_) Accept();
      } else {
        Drive(id);
      }
    }
    ExpireHandshakes(Clock::now());
  }
  // Unblock StopAccepting() should the loop end first.
  if (accepting_) DropHandshakes();
}

void BridgeLoop::Accept() {
  for (int k = 0; k < 16; ++k) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE)
        log::Warn("TLS bridge: cannot accept a connection: out of file descriptors; raise LimitNOFILE= "
                  "(or ulimit -n) if this persists",
                  {{"error", std::strerror(errno)}});
      return;  // EAGAIN: another loop took it, or none left
    }
    SSL* ssl = PrepareAcceptedFd(fd) ? SSL_new(ctx_->load(std::memory_order_acquire)) : nullptr;
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      SSL_free(ssl);
      close(fd);
      continue;
    }
    SSL_set_accept_state(ssl);
    uint64_t id = next_id_++;
    auto conn = std::make_unique<BridgeConnection>(fd, ssl, options_.buffer_bytes);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // conn closes fd
    conns_.emplace(id, std::move(conn));
    handshakes_.emplace_back(Clock::now() + options_.handshake_timeout, id);
    Drive(id);
  }
}

void BridgeLoop::Drive(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  BridgeConnection& conn = *it->second;
  BridgeConnection::State state = conn.Drive();
  if (state == BridgeConnection::State::kHandshaken) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      log::Warn("TLS bridge: socketpair failed; connection closed", {{"error", std::strerror(errno)}});
      conns_.erase(it);
      return;
    }
    conn.Attach(pair[0]);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, pair[0], &ev) != 0) {
      close(pair[1]);
      conns_.erase(it);
      return;
    }
    hand_off_(pair[1]);
    state = conn.Drive();
  }
  if (state == BridgeConnection::State::kDone) {
    if (!conn.failure().empty()) log::Debug("TLS bridge: connection closed", {{"error", conn.failure()}});
    conns_.erase(it);
  }
}

void BridgeLoop::ExpireHandshakes(Clock::time_point now) {
  while (!handshakes_.empty() && handshakes_.front().first <= now) {
    auto it = conns_.find(handshakes_.front().second);
    handshakes_.pop_front();
    if (it != conns_.end() && it->second->state() == BridgeConnection::State::kHandshaking) {
      log::Debug("TLS bridge: handshake timed out; connection closed");
      conns_.erase(it);
    }
  }
}

void BridgeLoop::DropHandshakes() {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, listen_fd_, nullptr);
  accepting_ = false;
  for (const auto& [deadline, id] : handshakes_) {
    auto it = conns_.find(id);
    if (it != conns_.end() && it->second->state() == BridgeConnection::State::kHandshaking) conns_.erase(it);
  }
  handshakes_.clear();
  std::lock_guard lock(mu_);
  accept_stopped_ = true;
  cv_.notify_all();
}

}  // namespace praefect::systemd
