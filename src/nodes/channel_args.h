#pragma once

#include <grpcpp/support/channel_arguments.h>

// grpc++ channel settings for praefect's own calls to nodes (health checks,
// replication, RemoveRepository of a creation that was not recorded): the
// data path does not go through these channels (http2/).
namespace praefect::nodes {

// Responses of any size (Gitaly's messages can be large), keepalive pings
// during calls at Gitaly's permitted rate, no service config from DNS (a
// resolver must not switch on retries), and reconnection within a second
// (grpc's backoff grows to 120 s, which kept a node restarted after a 90 s
// outage out of health checks for 38 s).
grpc::ChannelArguments NodeChannelArguments();

}  // namespace praefect::nodes
