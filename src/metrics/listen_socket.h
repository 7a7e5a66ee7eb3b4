#pragma once

// Internal to src/metrics/: the listening socket of the metrics server.

#include <string_view>

#include "common/status_or.h"

namespace praefect::metrics {

// Binds and listens on a TCP address as Go's net.Listen("tcp", ...) takes it,
// which is how Praefect reads prometheus_listen_addr: "host:port",
// "[v6addr]:port", or ":port" for every interface. Port 0 picks a free port.
// Returns the socket (close-on-exec, non-blocking), owned by the caller; an
// error says what was wrong and what to do.
StatusOr<int> ListenTcp(std::string_view address);

// OK when `fd` is a listening stream socket (as systemd passes one).
Status CheckListeningSocket(int fd);

// The local port of a bound socket; 0 when unknown (not an inet socket).
int LocalPort(int fd);

}  // namespace praefect::metrics
