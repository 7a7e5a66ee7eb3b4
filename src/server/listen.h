#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace praefect::server {

// Prepares `path` for a unix listener: its directory must exist; a stale
// socket file left by a crashed praefect is removed; a socket another
// process is serving on, or a path that is not a socket, is an error.
[[nodiscard]] Status PrepareUnixSocket(const std::string& path);

}  // namespace praefect::server
