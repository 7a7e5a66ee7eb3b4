#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/status_or.h"

namespace praefect::storagenode {

// Where a storage named in a request lives, as the caller tells it.
struct ServerAddress {
  std::string address;  // "tcp://host:port", "unix:/path", "tls://host:port", "host:port"
  std::string token;    // the storage's auth token (may be empty)
};

// The `gitaly-servers` metadata header: base64 (standard alphabet, padded)
// of a JSON object `{"<storage>": {"address": "...", "token": "..."}}`, as
// Gitaly's storage.InjectGitalyServers writes it. Unknown keys inside a
// server object are ignored; anything that is not that shape is
// INVALID_ARGUMENT saying where it broke.
[[nodiscard]] StatusOr<std::map<std::string, ServerAddress>> ParseGitalyServers(std::string_view header);

// The inverse, for tests and callers: base64 of the JSON object.
std::string EncodeGitalyServers(const std::map<std::string, ServerAddress>& servers);

// The metadata key.
inline constexpr std::string_view kGitalyServersMetadataKey = "gitaly-servers";

}  // namespace praefect::storagenode
