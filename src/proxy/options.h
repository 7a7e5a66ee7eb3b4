#pragma once

#include <chrono>
#include <string>

#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

// gRPC settings the proxy needs on both of its sides: Gitaly messages can be
// large (blob and pack chunks), and long streams cross NATs and load
// balancers that drop idle connections.
namespace praefect::proxy {

struct Options {
  // Largest single message accepted from a client (enforced by the Proxy)
  // or an upstream (enforced by the upstream channel), in bytes; -1 means no
  // limit beyond grpc's own (2 GiB). A larger message fails the call with
  // RESOURCE_EXHAUSTED.
  int max_message_bytes = -1;
  // Appended to the RESOURCE_EXHAUSTED message of a request over the limit:
  // where the operator sets it.
  std::string max_message_hint;

  // HTTP/2 keepalive pings on upstream channels while calls are active: a
  // ping after `keepalive_time` without traffic, the connection declared
  // dead when no answer comes within `keepalive_timeout`. Gitaly permits a
  // ping every 20 s; a peer with grpc's default enforcement (5 min) would
  // answer more frequent pings with GOAWAY.
  std::chrono::milliseconds keepalive_time{20'000};
  std::chrono::milliseconds keepalive_timeout{10'000};
};

// Lifts grpc's 4 MiB receive limit on the server that hosts the proxy. The
// Proxy enforces max_message_bytes on requests itself: when grpc's filter
// refuses a message, the proxy's read ends in a way it cannot tell from a
// half-close, and would forward a truncated request stream as complete.
// REQUIRES: called before builder->BuildAndStart().
void ConfigureServer(const Options& options, grpc::ServerBuilder* builder);

// Channel arguments for upstream channels: responses limited to
// max_message_bytes, requests not limited again, keepalive during calls,
// and no service config from DNS (a resolver must not be able to switch on
// retries, which would replay requests the proxy already forwarded).
grpc::ChannelArguments UpstreamChannelArguments(const Options& options);

}  // namespace praefect::proxy
