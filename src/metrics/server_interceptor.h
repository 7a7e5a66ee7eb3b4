#pragma once

// Internal to src/metrics/.

#include <chrono>
#include <functional>

#include <grpcpp/support/server_interceptor.h>

#include "metrics/grpc_server_metrics.h"

namespace praefect::metrics {

using SteadyNow = std::function<std::chrono::steady_clock::time_point()>;

// Creates one ServerMetricsInterceptor per call. Thread-safe.
class ServerMetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // REQUIRES: `metrics` outlives the factory and every call it intercepts.
  ServerMetricsInterceptorFactory(GrpcServerMetrics& metrics, SteadyNow now)
      : metrics_(metrics), now_(std::move(now)) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;

 private:
  GrpcServerMetrics& metrics_;
  const SteadyNow now_;
};

// Counts one call as go-grpc-prometheus' server interceptors do: started when
// created, each message received, each message sent, and handled (with the
// status code the server sends, and the handling time) before the status goes
// out. gRPC runs the hooks of one call one batch at a time, but batches of a
// streaming call can run on different threads: the state is atomic.
class ServerMetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  ServerMetricsInterceptor(GrpcServerMetrics& metrics, GrpcServerMetrics::Method& method, const SteadyNow& now);
  // Counts the call as Canceled if it ended without a status sent.
  ~ServerMetricsInterceptor() override;

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override;

 private:
  void Handled(int code);

  GrpcServerMetrics& metrics_;
  GrpcServerMetrics::Method& method_;
  const SteadyNow& now_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<bool> handled_{false};
};

}  // namespace praefect::metrics
