#pragma once

#include <string>
#include <string_view>

#include "common/status_or.h"

namespace praefect::config {

// A Gitaly node address as Praefect (Gitaly's client.Dial) accepts it.
struct NodeAddress {
  enum class Scheme { kTcp, kTls, kUnix, kDns };
  Scheme scheme = Scheme::kTcp;
  // tcp/tls: "host:port" or "host" (gRPC then uses port 443, as Go's does);
  // unix: the socket path; dns: the target after the optional authority.
  std::string target;
  // dns://authority/target: the name server; empty otherwise.
  std::string authority;
  bool has_port = false;  // tcp/tls only
};

// Accepts tcp://host[:port], tls://host[:port], unix:/path (also unix:///path
// and unix:relative), dns:host:port, dns:///host:port and
// dns://authority/host:port; schemes are case-insensitive, as in Go's
// url.Parse. Anything else, a bare "host:port" included, is an error whose
// message names the expected schemes and what was found.
StatusOr<NodeAddress> ParseNodeAddress(std::string_view address);

// Checks a listen address as Go's net.Listen("tcp", ...) wants it:
// "host:port", ":port" or "[v6]:port". Error message names what was found.
Status CheckListenAddress(std::string_view address);

}  // namespace praefect::config
