#pragma once

#include <string>
#include <string_view>

#include "common/status_or.h"

namespace praefect::gitremote {

// Where a gitaly:// remote lives: the gRPC target to dial and the repository
// on it.
struct Remote {
  std::string target;  // grpc++ target: "host:port", "unix:/path", "dns:..."
  bool tls = false;    // dial with SSL credentials (tls:// address)
  std::string storage_name;
  std::string relative_path;  // may contain slashes (@hashed/ab/cd/abcd.git)
};

// Parses `gitaly://HOST:PORT/<storage>/<relative path>`. A non-empty
// `address_override` (GITALY_ADDRESS) replaces HOST:PORT, which may then be
// empty (`gitaly:///storage/repo.git`). Addresses take the forms Gitaly
// configurations use: `unix:/path`, `tcp://host:port`, `tls://host:port`,
// `dns:...` or a bare `host:port`. Percent-escapes in the path are decoded.
[[nodiscard]] StatusOr<Remote> ParseRemote(std::string_view url, std::string_view address_override);

}  // namespace praefect::gitremote
