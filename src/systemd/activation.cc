#include "systemd/activation.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log/log.h"

namespace praefect::systemd {
namespace {

// "127.0.0.1:2305", "[::1]:2305" or "unix:/run/praefect/praefect.sock".
std::string LocalAddress(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  if (addr.ss_family == AF_UNIX) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    return "unix:" + std::string(un->sun_path);
  }
  return "?";
}

// Logs the socket taken for a role, and the configured address it replaces.
void Replace(int fd, const char* name, const char* key, std::string* configured) {
  if (fd < 0) return;
  if (!configured->empty())
    log::Info(std::string(key) + " is ignored: systemd passed a socket named \"" + name + "\" for it",
              {{key, *configured}, {"socket", LocalAddress(fd)}, {"fd", fd}});
  log::Info("listening on a socket passed by systemd", {{"name", name}, {"address", LocalAddress(fd)}, {"fd", fd}});
  configured->clear();
}

}  // namespace

StatusOr<std::unique_ptr<Activation>> Activation::Take(const config::Config& config) {
  auto sockets = TakeListenFds();
  if (!sockets.ok()) return sockets.status();
  std::unique_ptr<Activation> activation(new Activation(config, *sockets));
  if (sockets->tls >= 0 && config.tls.certificate_path.empty())
    return FailedPrecondition(std::string("systemd passed a socket named \"") + kTlsName +
                              "\" but [tls] certificate_path is not set: configure [tls] certificate_path and "
                              "key_path, or remove the TLS socket unit");
  config::Config& c = activation->config_;
  Replace(sockets->plain_inet, kPlainName, "listen_addr", &c.listen_addr);
  Replace(sockets->plain_unix, kPlainName, "socket_path", &c.socket_path);
  Replace(sockets->tls, kTlsName, "tls_listen_addr", &c.tls_listen_addr);
  Replace(sockets->metrics, kMetricsName, "prometheus_listen_addr", &c.prometheus_listen_addr);
  return activation;
}

Activation::Activation(config::Config config, ListenSockets sockets)
    : config_(std::move(config)), sockets_(sockets) {}

Activation::~Activation() {
  for (int fd : {sockets_.plain_inet, sockets_.plain_unix, sockets_.tls, sockets_.metrics})
    if (fd >= 0) close(fd);
}

ListenSockets Activation::TakeGrpcSockets() {
  ListenSockets out = sockets_;
  out.metrics = -1;
  sockets_.plain_inet = sockets_.plain_unix = sockets_.tls = -1;
  return out;
}

int Activation::TakeMetricsFd() {
  int fd = sockets_.metrics;
  sockets_.metrics = -1;
  return fd;
}

}  // namespace praefect::systemd
