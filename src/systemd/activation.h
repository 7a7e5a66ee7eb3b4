#pragma once

// The socket-activated side of `praefect serve`: the sockets systemd passed
// replace the configured addresses of their roles, and praefect accepts on
// them itself (plain gRPC: FdAcceptor; gRPC over TLS: TlsBridge) because
// grpc++ 1.51 cannot adopt a listening socket. Without LISTEN_FDS nothing
// changes.

#include <memory>

#include "common/status_or.h"
#include "config/config.h"
#include "systemd/listen_fds.h"

namespace grpc {
class Server;
}

namespace praefect::systemd {

class FdAcceptor;
class TlsBridge;

// Not thread-safe: used from the thread that runs the server.
class Activation {
 public:
  // Takes the sockets systemd passed (TakeListenFds) and logs, for each, the
  // configured address it replaces. Errors (an unknown fd name, TLS socket
  // without [tls] certificate) say what to fix.
  static StatusOr<std::unique_ptr<Activation>> Take(const config::Config& config);

  ~Activation();  // closes whatever is still open
  Activation(const Activation&) = delete;
  Activation& operator=(const Activation&) = delete;

  // The configuration with the addresses of the passed roles cleared: what
  // praefect still binds itself.
  const config::Config& config() const { return config_; }
  bool any() const { return sockets_.any(); }

  // Starts handing the connections of the passed gRPC sockets to `server`.
  // REQUIRES: `server` is started and outlives StopAccepting().
  [[nodiscard]] Status Serve(grpc::Server* server);

  // The passed metrics socket, for metrics::Exposer::Adopt; -1 when none.
  // The caller owns it.
  int TakeMetricsFd();

  // No new connection reaches the server after this returns; connections
  // already bridged over TLS keep flowing until they close (call before the
  // server's graceful stop; the destructor closes what is left).
  void StopAccepting();

  // Re-reads the TLS bridge's certificate and key from `tls` (SIGHUP); new
  // connections use them, the ones up keep theirs. On error the bridge
  // keeps the old ones and the error says why. OK without a TLS socket.
  [[nodiscard]] Status ReloadTls(const config::Tls& tls);

 private:
  Activation(config::Config config, ListenSockets sockets);

  config::Config config_;
  ListenSockets sockets_;
  std::unique_ptr<FdAcceptor> acceptor_;
  std::unique_ptr<TlsBridge> bridge_;
};

}  // namespace praefect::systemd
