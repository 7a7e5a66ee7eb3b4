#include "metrics/server_interceptor.h"

namespace praefect::metrics {

using grpc::experimental::InterceptionHookPoints;

grpc::experimental::Interceptor* ServerMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const char* name = info->method();
  GrpcServerMetrics::Method& method = metrics_.ForMethod(name != nullptr ? name : "");
  return new ServerMetricsInterceptor(metrics_, method, now_);
}

ServerMetricsInterceptor::ServerMetricsInterceptor(GrpcServerMetrics& metrics, GrpcServerMetrics::Method& method,
                                                   const SteadyNow& now)
    : metrics_(metrics), method_(method), now_(now), start_(now_()) {
  method_.started->Increment();
}

ServerMetricsInterceptor::~ServerMetricsInterceptor() {
  // A server always sends a status, even for a call the client cancelled; a
  // call that ends without one was torn down (server shutdown). Counted, so
  // that started_total - handled_total stays the number of calls in flight.
  Handled(static_cast<int>(grpc::StatusCode::CANCELLED));
}

void ServerMetricsInterceptor::Intercept(grpc::experimental::InterceptorBatchMethods* methods) {
  // A failed receive (end of the client's stream) reaches the hook with no
  // message; go-grpc-prometheus counts only messages RecvMsg returned.
  if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
      methods->GetRecvMessage() != nullptr) {
    method_.received->Increment();
  }
  // Counted before the send rather than after it succeeds (Go's SendMsg
  // returning nil): the post-send hook runs after the client may already have
  // the message, and a scrape right after a call must see it.
  if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
    method_.sent->Increment();
  }
  if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
    Handled(static_cast<int>(methods->GetSendStatus().error_code()));
  }
  methods->Proceed();
}

void ServerMetricsInterceptor::Handled(int code) {
  if (handled_.exchange(true)) return;
  metrics_.Handled(method_, code).Increment();
  metrics_.CountHandled();
  if (method_.handling != nullptr) {
    method_.handling->Observe(std::chrono::duration<double>(now_() - start_).count());
  }
}

}  // namespace praefect::metrics
