#pragma once

#include <cstdint>
#include <memory>

#include <grpcpp/generic/async_generic_service.h>

#include "proxy/director.h"
#include "proxy/options.h"

// The data path: a grpc++ callback generic service that takes every call no
// typed service claims, asks a Director where it goes, and forwards it as a
// bidirectional stream of opaque messages (unary, client-, server- and
// bidi-streaming calls are all bidi on the wire).
//
// Forwarding rules:
//  * Admission: the Director's Admit sees the method and metadata before
//    anything of the request is read; a refused call (authentication,
//    unknown method) ends with its status at once.
//  * Flow control: per call and direction at most one message is held by
//    the proxy; the next read from one side starts only when the previous
//    message's write to the other side has completed, so a slow reader
//    slows the writer and memory per call stays at two messages.
//  * Messages are not parsed or copied: the first request message is
//    flattened once for the Director (not even that when it arrived in one
//    slice), the rest pass through as grpc::ByteBuffers.
//  * Request metadata is forwarded minus transport headers (pseudo-headers,
//    content-type, te, user-agent, host, hop-by-hop headers, grpc-*), with
//    the Route's edits applied.
//  * The call's deadline is set on the upstream call; a client cancellation
//    cancels the upstream call.
//  * Upstream initial metadata reaches the client as soon as it arrives
//    (before any response message); upstream status code, message, error
//    details and trailing metadata reach the client unchanged, except that
//    UNAVAILABLE before any response names the Route's label.
//  * A client half-close is forwarded as a half-close; responses continue
//    after it. A client that goes away (cancels, resets the stream, misses
//    its deadline) cancels the upstream call instead: a truncated request
//    stream never looks complete to the upstream. Once the upstream has
//    ended the call, further client messages are discarded.
//  * A request message over Options::max_message_bytes fails the call with
//    RESOURCE_EXHAUSTED and cancels the upstream call. grpc has buffered the
//    whole message by then (grpc++ reads a message only whole): the limit
//    bounds what is forwarded, not what an authenticated client can make
//    the transport hold.
namespace praefect::proxy {

// Counters of one Proxy. Gauges are current values; max_* are high-water
// marks since the Proxy was created. A message counts as buffered from the
// read that received it until the write that forwards it has completed.
struct ProxyStats {
  int64_t calls_started = 0;
  int64_t calls_active = 0;
  int64_t messages_buffered = 0;
  int64_t bytes_buffered = 0;
  int64_t max_messages_buffered = 0;
  int64_t max_bytes_buffered = 0;
};

// Thread-safe. Register with grpc::ServerBuilder::RegisterCallbackGenericService
// and configure the builder with ConfigureServer (proxy/options.h).
class Proxy final : public grpc::CallbackGenericService {
 public:
  // `options.max_message_bytes` limits request messages (responses are
  // limited by the upstream channel, see UpstreamChannelArguments).
  // REQUIRES: `director` outlives the server's Shutdown(): every call of the
  // Proxy has finished by then.
  explicit Proxy(Director* director, const Options& options = Options());
  ~Proxy() override;

  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  ProxyStats Stats() const;

  // Called by grpc++ for each call.
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override;

  struct Shared;  // State shared with the calls; internal.

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace praefect::proxy
