#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace praefect::server {

// Checks that `address` ("host:port", ":port", "[v6]:port") can be bound
// now, so that a taken port or an unknown host is reported in the
// operator's terms before grpc++ tries (it only logs a generic failure).
[[nodiscard]] Status ProbeTcpListen(std::string_view address);

// Prepares `path` for a unix listener: its directory must exist; a stale
// socket file left by a crashed praefect is removed; a socket another
// process is serving on, or a path that is not a socket, is an error.
[[nodiscard]] Status PrepareUnixSocket(const std::string& path);

}  // namespace praefect::server
