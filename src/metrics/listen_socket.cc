#include "metrics/listen_socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

namespace praefect::metrics {

namespace {

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

constexpr std::string_view kExpected = "expected \"host:port\", \"[v6address]:port\" or \":port\" (such as \":9652\")";

struct HostPort {
  std::string host;  // empty: every interface
  std::string port;
};

StatusOr<HostPort> Split(std::string_view address) {
  size_t colon = address.rfind(':');
  if (address.find("://") != std::string_view::npos) {
    return InvalidArgument("metrics listen address " + Quote(address) + ": " + std::string(kExpected) +
                           ", without a scheme");
  }
  if (colon == std::string_view::npos) {
    return InvalidArgument("metrics listen address " + Quote(address) + " has no port: " + std::string(kExpected));
  }
  HostPort hp;
  std::string_view host = address.substr(0, colon);
  std::string_view port = address.substr(colon + 1);
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 2 || host.back() != ']') {
      return InvalidArgument("metrics listen address " + Quote(address) + ": unbalanced brackets; " +
                             std::string(kExpected));
    }
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return InvalidArgument("metrics listen address " + Quote(address) +
                           ": an IPv6 address needs brackets, as in \"[::1]:9652\"");
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return InvalidArgument("metrics listen address " + Quote(address) + ": port " + Quote(port) +
                           " is not a number from 0 to 65535");
  }
  hp.host = std::string(host);
  hp.port = std::to_string(value);
  return hp;
}

std::string BindAdvice(int err) {
  switch (err) {
    case EADDRINUSE:
      return "another process already listens on this port: stop it, or set prometheus_listen_addr to a free "
             "port";
    case EACCES:
      return "ports below 1024 need privileges: use a higher port";
    case EADDRNOTAVAIL:
      return "this host has no such address: use one of its addresses, or \":port\" for all of them";
    default:
      return "check prometheus_listen_addr";
  }
}

// One attempt: socket, bind, listen. Returns the fd, or -1 with errno set.
int TryListen(const struct sockaddr* addr, socklen_t len, int family, bool dual_stack) {
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (family == AF_INET6) {
    int v6only = dual_stack ? 0 : 1;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
  }
  if (bind(fd, addr, len) != 0 || listen(fd, SOMAXCONN) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace

StatusOr<int> ListenTcp(std::string_view address) {
  StatusOr<HostPort> hp = Split(address);
  if (!hp.ok()) return hp.status();

  struct addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  hints.ai_family = AF_UNSPEC;
  struct addrinfo* list = nullptr;
  const char* host = hp->host.empty() ? nullptr : hp->host.c_str();
  int rc = getaddrinfo(host, hp->port.c_str(), &hints, &list);
  if (rc != 0) {
    return InvalidArgument("metrics listen address " + Quote(address) + ": cannot resolve " + Quote(hp->host) +
                           " (" + gai_strerror(rc) + "): use an IP address or a name this host resolves");
  }
  // Go's order: for ":port" one dual-stack IPv6 socket when the host has IPv6,
  // else IPv4; for a name, its first IPv4 address before IPv6 ones.
  int fd = -1;
  int first_errno = 0;
  for (int pass = 0; pass < 2 && fd < 0; ++pass) {
    int family = (pass == 0) == (host == nullptr) ? AF_INET6 : AF_INET;
    for (struct addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
      if (ai->ai_family != family) continue;
      fd = TryListen(ai->ai_addr, ai->ai_addrlen, family, host == nullptr);
      if (fd < 0 && first_errno == 0) first_errno = errno;
    }
  }
  freeaddrinfo(list);
  if (fd < 0) {
    int err = first_errno != 0 ? first_errno : EADDRNOTAVAIL;
    return FailedPrecondition("cannot listen for metrics on " + Quote(address) + ": " + std::strerror(err) + "; " +
                              BindAdvice(err));
  }
  return fd;
}

Status CheckListeningSocket(int fd) {
  int type = 0;
  int listening = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) {
    return InvalidArgument("metrics socket (fd " + std::to_string(fd) + ") is not a socket: " +
                           std::strerror(errno) + "; check the FileDescriptorName= of praefect-metrics.socket");
  }
  len = sizeof listening;
  if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
    return InvalidArgument("metrics socket (fd " + std::to_string(fd) +
                           ") is not a listening stream socket; the unit needs ListenStream= (not "
                           "ListenDatagram=) and Accept=no");
  }
  return Status::Ok();
}

int LocalPort(int fd) {
  struct sockaddr_storage ss = {};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<struct sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<struct sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

}  // namespace praefect::metrics
