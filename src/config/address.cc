#include "config/address.h"

#include <cctype>

namespace praefect::config {
namespace {

constexpr std::string_view kExpectedSchemes =
    "an address with scheme tcp://, tls://, unix: or dns: (such as \"tcp://gitaly-1.internal:8075\")";

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

Status Bad(std::string_view address, std::string_view why) {
  std::string msg = "expected ";
  msg += kExpectedSchemes;
  msg += ", found " + Quote(address);
  if (!why.empty()) {
    msg += " (";
    msg += why;
    msg += ")";
  }
  return InvalidArgument(std::move(msg));
}

// Go's url.Parse scheme syntax: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":".
// Returns the lower-cased scheme and the rest after ':', or false.
bool SplitScheme(std::string_view s, std::string* scheme, std::string_view* rest) {
  size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  if (!std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  for (size_t i = 0; i < colon; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') return false;
    scheme->push_back(static_cast<char>(std::tolower(c)));
  }
  *rest = s.substr(colon + 1);
  return true;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

StatusOr<NodeAddress> ParseNodeAddress(std::string_view address) {
  if (address.empty()) return Bad(address, "it is empty");
  std::string scheme;
  std::string_view rest;
  if (!SplitScheme(address, &scheme, &rest)) {
    return Bad(address, "no scheme; for a plain TCP connection write \"tcp://" + std::string(address) + "\"");
  }
  NodeAddress out;
  if (scheme == "tcp" || scheme == "tls") {
    out.scheme = scheme == "tcp" ? NodeAddress::Scheme::kTcp : NodeAddress::Scheme::kTls;
    if (rest.substr(0, 2) != "//")
      return Bad(address, "\"" + scheme + ":\" must be followed by \"//host:port\"");
    std::string_view host_port = rest.substr(2);
    if (host_port.find('/') != std::string_view::npos) {
      return Bad(address, "a tcp:// or tls:// address must not have a path");
    }
    if (host_port.empty() || host_port.front() == ':') return Bad(address, "no host");
    size_t colon = host_port.rfind(':');
    size_t bracket = host_port.rfind(']');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
      if (!AllDigits(host_port.substr(colon + 1))) return Bad(address, "the port is not a number");
      out.has_port = true;
    }
    out.target = std::string(host_port);
    return out;
  }
  if (scheme == "unix") {
    out.scheme = NodeAddress::Scheme::kUnix;
    std::string_view path = rest;
    if (path.substr(0, 2) == "//") path.remove_prefix(2);  // unix:///abs/path
    if (path.empty()) return Bad(address, "no socket path");
    out.target = std::string(path);
    return out;
  }
  if (scheme == "dns") {
    out.scheme = NodeAddress::Scheme::kDns;
    std::string_view target = rest;
    if (target.substr(0, 2) == "//") {
      target.remove_prefix(2);
      size_t slash = target.find('/');
      if (slash == std::string_view::npos)
        return Bad(address, "dns:// needs \"/host:port\" after the authority");
      out.authority = std::string(target.substr(0, slash));
      target.remove_prefix(slash + 1);
    }
    if (target.empty()) return Bad(address, "no host to resolve");
    out.target = std::string(target);
    return out;
  }
  if (AllDigits(rest))
    return Bad(address, "no scheme; for a plain TCP connection write \"tcp://" + std::string(address) + "\"");
  return Bad(address, "unknown scheme \"" + scheme + ":\"");
}

Status CheckListenAddress(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size()) {
    return InvalidArgument("expected \"host:port\" (such as \"0.0.0.0:2305\" or \":2305\"), found " +
                           Quote(address) + " (missing port)");
  }
  if (address.find("://") != std::string_view::npos) {
    return InvalidArgument("expected \"host:port\" without a scheme (such as \"0.0.0.0:2305\"), found " +
                           Quote(address));
  }
  return Status::Ok();
}

}  // namespace praefect::config
