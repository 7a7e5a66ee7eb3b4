#include "systemd/listen_fds.h"

#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace praefect::systemd {
namespace {

std::string Describe(const PassedFd& p) {
  return "the socket passed by systemd as fd " + std::to_string(p.fd) + " named \"" + p.name + "\"";
}

const char* FamilyName(int family) {
  switch (family) {
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_UNIX: return "AF_UNIX";
    default: return "another family";
  }
}

Status Duplicate(const PassedFd& p, const char* what) {
  return FailedPrecondition(Describe(p) + " is a second " + what + " socket named \"" + p.name +
                            "\": praefect takes one socket per name. Remove the extra ListenStream= line, or give "
                            "it another FileDescriptorName= in its .socket unit");
}

}  // namespace

StatusOr<ListenSockets> MatchListenFds(const std::vector<PassedFd>& fds) {
  ListenSockets out;
  for (const PassedFd& p : fds) {
    const bool plain = p.name == kPlainName, tls = p.name == kTlsName, metrics = p.name == kMetricsName;
    if (!plain && !tls && !metrics)
      return FailedPrecondition(
          Describe(p) + " has a name praefect does not know: expected \"" + kPlainName + "\" (gRPC), \"" + kTlsName +
          "\" (gRPC over TLS) or \"" + kMetricsName +
          "\" (Prometheus metrics). Set FileDescriptorName= to one of them in the .socket unit that passes it "
          "(systemd names a socket after its unit, e.g. \"praefect.socket\", when FileDescriptorName= is unset)");
    if (!p.listening_stream)
      return FailedPrecondition(Describe(p) +
                                " is not a listening stream socket: use ListenStream= (not ListenDatagram= or "
                                "Accept=yes) in its .socket unit");
    if (plain && (p.family == AF_INET || p.family == AF_INET6)) {
      if (out.plain_inet >= 0) return Duplicate(p, "TCP");
      out.plain_inet = p.fd;
    } else if (plain && p.family == AF_UNIX) {
      if (out.plain_unix >= 0) return Duplicate(p, "unix");
      out.plain_unix = p.fd;
    } else if (plain) {
      return FailedPrecondition(Describe(p) + " is of " + FamilyName(p.family) +
                                ": praefect serves gRPC on TCP (IPv4, IPv6) and unix sockets only");
    } else if (tls) {
      if (out.tls >= 0) return Duplicate(p, "TLS");
      out.tls = p.fd;
    } else {
      if (out.metrics >= 0) return Duplicate(p, "metrics");
      out.metrics = p.fd;
    }
  }
  return out;
}

StatusOr<ListenSockets> TakeListenFds() {
  char** names = nullptr;
  int n = sd_listen_fds_with_names(1, &names);
  if (n < 0)
    return FailedPrecondition(std::string("cannot take the sockets systemd passed (LISTEN_FDS): ") +
                              std::strerror(-n) + ": check the .socket units of praefect");
  std::vector<PassedFd> fds;
  for (int i = 0; i < n; ++i) {
    PassedFd p;
    p.fd = SD_LISTEN_FDS_START + i;
    p.name = names != nullptr && names[i] != nullptr ? names[i] : "unknown";
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(p.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) p.family = addr.ss_family;
    p.listening_stream = sd_is_socket(p.fd, AF_UNSPEC, SOCK_STREAM, 1) > 0;
    fds.push_back(std::move(p));
  }
  if (names != nullptr) {
    for (int i = 0; i < n; ++i) free(names[i]);
    free(names);
  }
  StatusOr<ListenSockets> matched = MatchListenFds(fds);
  if (!matched.ok())
    for (const PassedFd& p : fds) close(p.fd);
  return matched;
}

}  // namespace praefect::systemd
