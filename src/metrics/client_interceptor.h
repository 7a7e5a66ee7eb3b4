#pragma once

#include <memory>

#include <grpcpp/support/client_interceptor.h>

#include "metrics/metrics.h"

namespace praefect::metrics {

// A grpc++ client interceptor factory that counts every call made on the
// channel into `metrics` (grpc_client_*, as go-grpc-prometheus' client
// interceptors do): started when its initial metadata is sent, handled
// with its status when it ends, messages sent and received, handling time.
// For praefect's own calls to the nodes (nodes::NodeSet's channels).
// REQUIRES: `metrics` outlives every channel the factory is given to.
std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> NewClientInterceptorFactory(Metrics* metrics);

}  // namespace praefect::metrics
