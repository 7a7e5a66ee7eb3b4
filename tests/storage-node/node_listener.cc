#include "node_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log/log.h"

namespace praefect::storagenode {
namespace {

constexpr std::string_view kMagic = "backchannel";

std::string Reason() { return std::strerror(errno); }

// "host:port", "[v6]:port", ":port" into host and port.
bool SplitHostPort(const std::string& addr, std::string* host, std::string* port) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return false;
  *host = addr.substr(0, colon);
  *port = addr.substr(colon + 1);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') *host = host->substr(1, host->size() - 2);
  return !port->empty();
}

StatusOr<int> ListenTcp(const std::string& addr, int* port) {
  std::string host, service;
  if (!SplitHostPort(addr, &host, &service))
    return InvalidArgument("listen_addr \"" + addr + "\": expected host:port (e.g. 127.0.0.1:8075 or [::]:0)");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  // An empty host means every address, as grpc++ did: "::" takes IPv4 too.
  int rc = getaddrinfo(host.empty() ? "::" : host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0) return Unavailable("cannot listen on " + addr + ": " + gai_strerror(rc));
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      last_error = Reason();
      continue;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0) {
      last_error = Reason();
      close(fd);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    *port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    freeaddrinfo(found);
    return fd;
  }
  freeaddrinfo(found);
  return Unavailable("cannot listen on " + addr + ": " + last_error);
}

StatusOr<int> ListenUnix(const std::string& path) {
  sockaddr_un sun{};
  sun.sun_family = AF_UNIX;
  if (path.size() >= sizeof sun.sun_path)
    return InvalidArgument("socket_path \"" + path + "\" is longer than " + std::to_string(sizeof sun.sun_path - 1) +
                           " bytes, the limit of a unix socket path: choose a shorter one");
  std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
  unlink(path.c_str());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Unavailable("cannot listen on unix:" + path + ": " + Reason());
  if (bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0 || listen(fd, SOMAXCONN) != 0) {
    Status st = Unavailable("cannot listen on unix:" + path + ": " + Reason());
    close(fd);
    return st;
  }
  return fd;
}

std::string PeerName(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unix";
}

}  // namespace

StatusOr<std::unique_ptr<NodeListener>> NodeListener::Bind(const std::string& listen_addr,
                                                           const std::string& socket_path) {
  std::unique_ptr<NodeListener> listener(new NodeListener());
  if (!listen_addr.empty()) {
    auto fd = ListenTcp(listen_addr, &listener->tcp_port_);
    if (!fd.ok()) return fd.status();
    listener->listen_fds_.push_back(*fd);
  }
  if (!socket_path.empty()) {
    auto fd = ListenUnix(socket_path);
    if (!fd.ok()) return fd.status();
    listener->listen_fds_.push_back(*fd);
  }
  listener->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (listener->wake_fd_ < 0) return Internal("eventfd for the accept loop: " + Reason());
  return listener;
}

NodeListener::~NodeListener() {
  Stop();
  for (int fd : listen_fds_) close(fd);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void NodeListener::Start(grpc::Server* server, BackchannelRegistry* registry) {
  server_ = server;
  registry_ = registry;
  thread_ = std::thread([this] { Run(); });
}

void NodeListener::Stop() {
  stop_.store(true);
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  for (const Sniffing& conn : sniffing_) close(conn.fd);
  sniffing_.clear();
}

void NodeListener::Run() {
  std::vector<pollfd> fds;
  std::vector<size_t> which;  // index into sniffing_ of fds[listen + 1 + k]
  while (!stop_.load()) {
    const auto now = std::chrono::steady_clock::now();
    int timeout_ms = -1;
    fds.clear();
    which.clear();
    fds.push_back({wake_fd_, POLLIN, 0});
    for (int fd : listen_fds_) fds.push_back({fd, POLLIN, 0});
    for (size_t i = 0; i < sniffing_.size(); ++i) {
      const Sniffing& conn = sniffing_[i];
      auto until = conn.waiting_prefix ? std::min(conn.retry_at, conn.deadline) : conn.deadline;
      long ms = std::max<long>(
          0, static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(until - now).count()));
      timeout_ms = timeout_ms < 0 ? static_cast<int>(ms) : std::min(timeout_ms, static_cast<int>(ms));
      if (conn.waiting_prefix) continue;
      fds.push_back({conn.fd, POLLIN, 0});
      which.push_back(i);
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
      log::Error("accept loop: poll failed; the node accepts no more connections", {{"error", Reason()}});
      return;
    }
    if (fds[0].revents != 0) {
      uint64_t count;
      (void)!read(wake_fd_, &count, sizeof count);
    }
    for (size_t i = 0; i < listen_fds_.size(); ++i) {
      if (fds[1 + i].revents != 0) Accept(listen_fds_[i]);
    }
    const auto later = std::chrono::steady_clock::now();
    std::vector<bool> ready(sniffing_.size(), false);
    for (size_t k = 0; k < which.size(); ++k) ready[which[k]] = fds[1 + listen_fds_.size() + k].revents != 0;
    for (size_t i = 0; i < ready.size(); ++i) {
      Sniffing& conn = sniffing_[i];
      const bool retry = conn.waiting_prefix && later >= conn.retry_at;
      if (ready[i] || retry) Decide(conn, Sniff(conn.fd));
      if (conn.fd >= 0 && later >= conn.deadline) {
        log::Warn("closing a connection that did not say within the timeout whether it is gRPC or a backchannel",
                  {{"peer", conn.peer}, {"timeout_seconds", static_cast<long long>(kSniffTimeout.count())}});
        Decide(conn, Verdict::kClose);
      }
    }
    sniffing_.erase(std::remove_if(sniffing_.begin(), sniffing_.end(), [](const Sniffing& c) { return c.fd < 0; }),
                    sniffing_.end());
  }
}

void NodeListener::Accept(int listen_fd) {
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        log::Warn("accept failed; retrying on the next connection", {{"error", Reason()}});
      return;
    }
    if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6) {
      // Votes and small RPCs are latency bound; grpc++ sets this on the
      // connections it accepts itself.
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto now = std::chrono::steady_clock::now();
    sniffing_.push_back({fd, PeerName(addr), now + kSniffTimeout, now, false});
    // Most clients have written their first bytes already.
    Decide(sniffing_.back(), Sniff(fd));
  }
}

NodeListener::Verdict NodeListener::Sniff(int fd) {
  char head[kMagic.size()];
  ssize_t n = recv(fd, head, sizeof head, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? Verdict::kWait : Verdict::kClose;
  if (n == 0) return Verdict::kClose;
  std::string_view got(head, static_cast<size_t>(n));
  if (got != kMagic.substr(0, got.size())) return Verdict::kPlain;
  return got.size() == kMagic.size() ? Verdict::kBackchannel : Verdict::kWaitPrefix;
}

void NodeListener::Decide(Sniffing& conn, Verdict verdict) {
  switch (verdict) {
    case Verdict::kWait:
      conn.waiting_prefix = false;
      return;
    case Verdict::kWaitPrefix:
      conn.waiting_prefix = true;
      conn.retry_at = std::chrono::steady_clock::now() + kPrefixRetry;
      return;
    case Verdict::kClose:
      close(conn.fd);
      break;
    case Verdict::kPlain:
      registry_->Reap();
      registry_->AdoptPlain(conn.fd, server_);
      break;
    case Verdict::kBackchannel: {
      char magic[kMagic.size()];
      // The bytes are there (peeked): this read cannot block or come short.
      if (recv(conn.fd, magic, sizeof magic, MSG_DONTWAIT) != static_cast<ssize_t>(sizeof magic)) {
        close(conn.fd);
        break;
      }
      registry_->Reap();
      if (Status st = registry_->AdoptBackchannel(conn.fd, conn.peer, server_); !st.ok())
        log::Error("cannot serve a backchannel connection; it was closed", {{"peer", conn.peer}, {"error", st.message()}});
      break;
    }
  }
  conn.fd = -1;
}

}  // namespace praefect::storagenode
