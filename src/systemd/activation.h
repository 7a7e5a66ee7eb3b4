#pragma once

// The socket-activated side of `praefect serve`: the sockets systemd passed
// replace the configured addresses of their roles, and the data plane
// serves on them directly (TLS terminated in process on the praefect-tls
// socket). Without LISTEN_FDS nothing changes.

#include <memory>

#include "common/status_or.h"
#include "config/config.h"
#include "systemd/listen_fds.h"

namespace praefect::systemd {

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

  // The passed gRPC sockets (plain inet, plain unix, TLS; -1 where none),
  // now the caller's to serve on and close.
  ListenSockets TakeGrpcSockets();

  // The passed metrics socket, for metrics::Exposer::Adopt; -1 when none.
  // The caller owns it.
  int TakeMetricsFd();

 private:
  Activation(config::Config config, ListenSockets sockets);

  config::Config config_;
  ListenSockets sockets_;
};

}  // namespace praefect::systemd
