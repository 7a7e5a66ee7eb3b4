#include <chrono>

#include "metrics/grpc_server_metrics.h"
#include "metrics/metrics.h"

namespace praefect::metrics {
namespace {

// go-grpc-prometheus' server metrics from what the data plane reports of
// each call: started when its headers arrive, handled (with its code, its
// messages and its handling time) when it ends, cancelled calls included,
// so that started_total - handled_total stays the number of calls in flight.
// The client metrics count the proxied stream to the node the same way:
// started when it opens, handled when the call ends, its messages being
// those the call forwarded each way.
class CallObserver final : public http2::CallObserver {
 public:
  CallObserver(GrpcServerMetrics& metrics, GrpcServerMetrics& client) : metrics_(metrics), client_(client) {}

  void OnStarted(std::string_view method) override { metrics_.ForMethod(method).started->Increment(); }

  void OnUpstreamCall(std::string_view method) override { client_.ForMethod(method).started->Increment(); }

  void OnFinished(const Finished& call) override {
    GrpcServerMetrics::Method& m = metrics_.ForMethod(call.method);
    if (call.upstream_called) {
      GrpcServerMetrics::Method& c = GrpcServerMetrics::Peer(m, client_);
      if (call.messages_received > 0) c.sent->Increment(static_cast<double>(call.messages_received));
      if (call.messages_sent > 0) c.received->Increment(static_cast<double>(call.messages_sent));
      client_.Handled(c, static_cast<int>(call.code)).Increment();
      if (c.handling != nullptr) c.handling->Observe(std::chrono::duration<double>(call.duration).count());
    }
    if (call.messages_received > 0) m.received->Increment(static_cast<double>(call.messages_received));
    if (call.messages_sent > 0) m.sent->Increment(static_cast<double>(call.messages_sent));
    metrics_.Handled(m, static_cast<int>(call.code)).Increment();
    metrics_.CountHandled();
    if (m.handling != nullptr) m.handling->Observe(std::chrono::duration<double>(call.duration).count());
  }

 private:
  GrpcServerMetrics& metrics_;
  GrpcServerMetrics& client_;
};

}  // namespace

std::unique_ptr<http2::CallObserver> NewGrpcServerObserver(GrpcServerMetrics& server, GrpcServerMetrics& client) {
  return std::make_unique<CallObserver>(server, client);
}

}  // namespace praefect::metrics
