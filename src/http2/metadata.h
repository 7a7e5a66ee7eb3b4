#pragma once

#include <string_view>

#include "common/status.h"

// Which headers are gRPC metadata a proxy passes on, and which a Director
// may set.
namespace praefect::http2 {

// Headers of the transport, never forwarded from one hop to the next:
// pseudo-headers, the hop-by-hop ones, content-type and te (set per hop),
// grpc-timeout (recomputed per hop), grpc-status and grpc-message.
bool IsTransportHeader(std::string_view name);

// Whether a Director may set `key` to `value` on the upstream call: a legal
// key (lower-case letters, digits, '-', '_', '.'), not a transport header,
// and a value of printable ASCII unless the key ends in "-bin". INTERNAL
// naming the key and `method` otherwise (a Director bug).
[[nodiscard]] Status CheckSettable(std::string_view key, std::string_view value, std::string_view method);

}  // namespace praefect::http2
