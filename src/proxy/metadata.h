#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grpcpp/support/string_ref.h>

#include "common/status_or.h"
#include "proxy/director.h"

// Which metadata crosses the proxy, and how a Route edits it. Internal to
// the proxy; exposed for tests. Thread-safe (pure functions).
namespace praefect::proxy::internal {

using MetadataMap = std::multimap<grpc::string_ref, grpc::string_ref>;
using Metadata = std::vector<std::pair<std::string, std::string>>;

// Whether `key` belongs to the transport (HTTP/2 pseudo-headers, hop-by-hop
// headers, content-type, te, user-agent, host, grpc-*). Such headers are
// set by grpc on each hop and never forwarded; grpc refuses or duplicates
// them if asked to send them.
[[nodiscard]] bool IsTransportHeader(std::string_view key);

// The metadata to send upstream: `client` minus transport headers, with
// `route`'s drops and sets applied (see Route). A set that grpc would refuse
// (illegal key, illegal value for a non-binary key, transport header) is
// INTERNAL naming the key and `method`: it is the Director's bug.
[[nodiscard]] StatusOr<Metadata> UpstreamMetadata(const MetadataMap& client, const Route& route,
                                                  std::string_view method);

// Response metadata (initial or trailing) to pass to the client: `upstream`
// minus transport headers. Error details travel in the grpc::Status.
[[nodiscard]] Metadata ResponseMetadata(const MetadataMap& upstream);

}  // namespace praefect::proxy::internal
