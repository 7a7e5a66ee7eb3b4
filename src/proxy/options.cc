#include "proxy/options.h"

#include <grpc/grpc.h>

namespace praefect::proxy {

void ConfigureServer(const Options& /*options*/, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(-1);
  builder->SetMaxSendMessageSize(-1);
}

grpc::ChannelArguments UpstreamChannelArguments(const Options& options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(options.keepalive_time.count()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(options.keepalive_timeout.count()));
  // Pings only while calls are active, but then for as long as they last:
  // grpc otherwise stops after two pings without data, which is exactly the
  // quiet stretch of a long stream that keepalive is for.
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
  // A fixed 1 MiB HTTP/2 window per stream instead of grpc's bandwidth probe,
  // which grew it to 8-28 MiB per stream: bytes a node sends ahead sit in
  // grpc's transport, below the proxy's one-message bound
  // (bench/stream_memory: 8 streams took praefect from 27 to 100-250 MiB
  // with the probe, +4-6 MiB without; no throughput cost on loopback).
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 1 << 20);
  // A node back from an outage must be seen within about a second: grpc's
  // default reconnect backoff grows to 120 s, which kept a node restarted
  // after a 90 s outage out of reads and elections for 38 s.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 250);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return args;
}

}  // namespace praefect::proxy
