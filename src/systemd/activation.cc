#include "systemd/activation.h"

#include <arpa/inet.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log/log.h"
#include "systemd/fd_acceptor.h"
#include "systemd/tls_bridge.h"
#include "systemd/tls_context.h"

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
  StopAccepting();
  bridge_.reset();
  for (int fd : {sockets_.plain_inet, sockets_.plain_unix, sockets_.tls, sockets_.metrics})
    if (fd >= 0) close(fd);
}

Status Activation::Serve(grpc::Server* server) {
  HandOff hand_off = [server](int fd) { grpc::AddInsecureChannelFromFd(server, fd); };
  if (sockets_.tls >= 0) {
    auto ctx = NewServerContext({config_.tls.certificate_path, config_.tls.key_path, config_.tls.key});
    if (!ctx.ok()) return ctx.status();
    auto bridge = TlsBridge::Start(sockets_.tls, std::move(*ctx), hand_off);
    sockets_.tls = -1;  // owned by the bridge, also on error
    if (!bridge.ok()) return bridge.status();
    bridge_ = std::move(*bridge);
  }
  std::vector<int> plain;
  for (int* fd : {&sockets_.plain_inet, &sockets_.plain_unix}) {
    if (*fd >= 0) plain.push_back(*fd);
    *fd = -1;  // owned by the acceptor, also on error
  }
  if (!plain.empty()) {
    auto acceptor = FdAcceptor::Start(std::move(plain), hand_off);
    if (!acceptor.ok()) return acceptor.status();
    acceptor_ = std::move(*acceptor);
  }
  return Status::Ok();
}

int Activation::TakeMetricsFd() {
  int fd = sockets_.metrics;
  sockets_.metrics = -1;
  return fd;
}

void Activation::StopAccepting() {
  if (acceptor_) acceptor_->Stop();
  if (bridge_) bridge_->StopAccepting();
}

Status Activation::ReloadTls(const config::Tls& tls) {
  if (!bridge_) return Status::Ok();
  auto ctx = NewServerContext({tls.certificate_path, tls.key_path, tls.key});
  if (!ctx.ok()) return ctx.status();
  bridge_->ReplaceContext(std::move(*ctx));
  return Status::Ok();
}

}  // namespace praefect::systemd
