#include "remote_url.h"

namespace praefect::gitremote {
namespace {

constexpr std::string_view kScheme = "gitaly://";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

StatusOr<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    int hi = i + 2 < in.size() ? HexValue(in[i + 1]) : -1;
    int lo = i + 2 < in.size() ? HexValue(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) return InvalidArgument("bad percent-escape in \"" + std::string(in) + "\"");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Status ParseAddress(std::string_view address, Remote* remote) {
  auto strip = [&](std::string_view prefix) {
    if (address.substr(0, prefix.size()) != prefix) return false;
    address.remove_prefix(prefix.size());
    return true;
  };
  if (address.substr(0, 5) == "unix:" || address.substr(0, 4) == "dns:") {
    remote->target = std::string(address);
  } else if (strip("tcp://")) {
    remote->target = std::string(address);
  } else if (strip("tls://")) {
    remote->target = std::string(address);
    remote->tls = true;
  } else if (address.find("://") != std::string_view::npos) {
    return InvalidArgument("unsupported address \"" + std::string(address) +
                           "\": expected unix:/path, tcp://host:port, tls://host:port or host:port");
  } else {
    remote->target = std::string(address);
  }
  if (remote->target.empty() || remote->target == "unix:") {
    return InvalidArgument("empty address: use gitaly://HOST:PORT/<storage>/<repository> or set GITALY_ADDRESS");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<Remote> ParseRemote(std::string_view url, std::string_view address_override) {
  const std::string usage = "expected gitaly://HOST:PORT/<storage>/<relative path>, got \"" +
                            std::string(url) + "\"";
  if (url.substr(0, kScheme.size()) != kScheme) return InvalidArgument(usage);
  std::string_view rest = url.substr(kScheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return InvalidArgument(usage);
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = rest.substr(slash + 1);
  size_t storage_end = path.find('/');
  if (storage_end == std::string_view::npos || storage_end == 0 || storage_end + 1 == path.size()) {
    return InvalidArgument(usage);
  }

  Remote remote;
  Status address = ParseAddress(address_override.empty() ? authority : address_override, &remote);
  if (!address.ok()) return address;
  StatusOr<std::string> storage = PercentDecode(path.substr(0, storage_end));
  if (!storage.ok()) return storage.status();
  StatusOr<std::string> relative = PercentDecode(path.substr(storage_end + 1));
  if (!relative.ok()) return relative.status();
  remote.storage_name = std::move(*storage);
  remote.relative_path = std::move(*relative);
  return remote;
}

}  // namespace praefect::gitremote
