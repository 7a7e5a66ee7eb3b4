#include "http2/metadata.h"

#include <algorithm>
#include <array>
#include <string>

namespace praefect::http2 {

bool IsTransportHeader(std::string_view name) {
  if (name.empty() || name.front() == ':') return true;
  static constexpr std::array<std::string_view, 12> kTransport = {
      "content-type", "te",          "host",           "connection",   "keep-alive",  "upgrade",
      "transfer-encoding", "proxy-connection", "content-length", "grpc-timeout", "grpc-status", "grpc-message",
  };
  return std::find(kTransport.begin(), kTransport.end(), name) != kTransport.end();
}

Status CheckSettable(std::string_view key, std::string_view value, std::string_view method) {
  // The message is built only for a refusal: this runs on every call.
  auto where = [method] { return "the director's route for " + std::string(method); };
  const bool legal_key = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
  if (!legal_key)
    return Internal(where() + " sets metadata key \"" + std::string(key) +
                    "\", which is not a legal gRPC metadata key (lower-case letters, digits, '-', '_', '.')");
  if (IsTransportHeader(key) || key.starts_with("grpc-"))
    return Internal(where() + " sets metadata key \"" + std::string(key) +
                    "\", a transport header that each hop sets itself");
  if (!key.ends_with("-bin") &&
      !std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7e; }))
    return Internal(where() + " sets metadata key \"" + std::string(key) +
                    "\" to a value with characters outside printable ASCII; binary values need a key ending in -bin");
  return Status::Ok();
}

}  // namespace praefect::http2
