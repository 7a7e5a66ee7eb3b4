#pragma once

// Listening sockets passed by systemd socket activation, picked by the name
// each .socket unit gives them (FileDescriptorName=), never by position.

#include <string>
#include <vector>

#include "common/status_or.h"

namespace praefect::systemd {

// The names praefect takes, one per role.
inline constexpr const char* kPlainName = "praefect";            // gRPC, plaintext
inline constexpr const char* kTlsName = "praefect-tls";          // gRPC over TLS
inline constexpr const char* kMetricsName = "praefect-metrics";  // Prometheus /metrics

// One descriptor as systemd passed it.
struct PassedFd {
  int fd = -1;
  std::string name;               // from LISTEN_FDNAMES; "unknown" when unnamed
  int family = 0;                 // AF_INET, AF_INET6, AF_UNIX, ...
  bool listening_stream = false;  // a SOCK_STREAM socket in the listening state
};

// The passed sockets by role; -1 where none was passed. The "praefect" name
// may carry one inet socket (replacing listen_addr) and one AF_UNIX socket
// (replacing socket_path), so that one praefect.socket unit can hold both
// its ListenStream= lines.
struct ListenSockets {
  int plain_inet = -1;  // replaces listen_addr
  int plain_unix = -1;  // replaces socket_path
  int tls = -1;         // replaces tls_listen_addr
  int metrics = -1;     // replaces prometheus_listen_addr

  bool any() const { return plain_inet >= 0 || plain_unix >= 0 || tls >= 0 || metrics >= 0; }
};

// Assigns each passed descriptor its role by name. Errors (an unknown name,
// a name given twice, a descriptor that is not a listening stream socket)
// name the descriptor and say what to change in the .socket unit. Pure: no
// descriptor is touched.
[[nodiscard]] StatusOr<ListenSockets> MatchListenFds(const std::vector<PassedFd>& fds);

// Takes the descriptors systemd passed to this process (LISTEN_FDS,
// LISTEN_PID, LISTEN_FDNAMES; the variables are unset afterwards so that
// child processes do not see them) and matches them. Without LISTEN_FDS,
// or when LISTEN_PID names another process: an empty ListenSockets. On
// error every passed descriptor is closed.
[[nodiscard]] StatusOr<ListenSockets> TakeListenFds();

}  // namespace praefect::systemd
