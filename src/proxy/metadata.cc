#include "proxy/metadata.h"

#include <algorithm>
#include <array>

#include <grpc/grpc.h>
#include <grpc/slice.h>

namespace praefect::proxy::internal {
namespace {

grpc_slice View(std::string_view s) { return grpc_slice_from_static_buffer(s.data(), s.size()); }

std::string_view View(grpc::string_ref s) { return std::string_view(s.data(), s.size()); }

bool Contains(const std::vector<std::string>& keys, std::string_view key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

bool IsSet(const Route& route, std::string_view key) {
  return std::any_of(route.set_metadata.begin(), route.set_metadata.end(),
                     [&](const auto& kv) { return kv.first == key; });
}

Status CheckSettable(std::string_view key, std::string_view value, std::string_view method) {
  const std::string where = "the director's route for " + std::string(method);
  if (key.empty() || !grpc_header_key_is_legal(View(key))) {
    return Internal(where + " sets metadata key \"" + std::string(key) +
                    "\", which is not a legal gRPC metadata key (lower-case letters, digits, '-', '_', '.')");
  }
  if (IsTransportHeader(key)) {
    return Internal(where + " sets metadata key \"" + std::string(key) +
                    "\", a transport header that gRPC sets itself on each hop");
  }
  if (!grpc_is_binary_header(View(key)) && !grpc_header_nonbin_value_is_legal(View(value))) {
    return Internal(where + " sets metadata key \"" + std::string(key) +
                    "\" to a value with characters outside printable ASCII; binary values need a key ending in -bin");
  }
  return Status::Ok();
}

}  // namespace

bool IsTransportHeader(std::string_view key) {
  if (key.empty() || key.front() == ':') return true;
  // grpc-* is reserved to grpc itself. grpc++ never reports grpc-trace-bin
  // or grpc-tags-bin to an application either, so tracing context cannot
  // be forwarded from here.
  if (key.starts_with("grpc-")) return true;
  static constexpr std::array<std::string_view, 10> kTransport = {
      "content-type", "te",      "user-agent",        "host",    "connection",
      "keep-alive",   "upgrade", "transfer-encoding", "proxy-connection", "content-length",
  };
  return std::find(kTransport.begin(), kTransport.end(), key) != kTransport.end();
}

StatusOr<Metadata> UpstreamMetadata(const MetadataMap& client, const Route& route, std::string_view method) {
  for (const auto& [key, value] : route.set_metadata) {
    Status st = CheckSettable(key, value, method);
    if (!st.ok()) return st;
  }
  Metadata out;
  out.reserve(client.size() + route.set_metadata.size());
  for (const auto& [key_ref, value_ref] : client) {
    const std::string_view key = View(key_ref);
    if (IsTransportHeader(key) || Contains(route.drop_metadata, key) || IsSet(route, key)) continue;
    out.emplace_back(std::string(key), std::string(View(value_ref)));
  }
  for (const auto& kv : route.set_metadata) out.push_back(kv);
  return out;
}

Metadata ResponseMetadata(const MetadataMap& upstream) {
  Metadata out;
  for (const auto& [key_ref, value_ref] : upstream) {
    const std::string_view key = View(key_ref);
    if (IsTransportHeader(key)) continue;
    out.emplace_back(std::string(key), std::string(View(value_ref)));
  }
  return out;
}

}  // namespace praefect::proxy::internal
