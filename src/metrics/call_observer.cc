#include <chrono>

#include "metrics/grpc_server_metrics.h"
#include "metrics/metrics.h"

namespace praefect::metrics {
namespace {

// go-grpc-prometheus' server metrics from what the data plane reports of
// each call: started when its headers arrive, handled (with its code, its
// messages and its handling time) when it ends, cancelled calls included,
// so that started_total - handled_total stays the number of calls in flight.
class CallObserver final : public http2::CallObserver {
 public:
  explicit CallObserver(GrpcServerMetrics& metrics) : metrics_(metrics) {}

  void OnStarted(std::string_view method) override { metrics_.ForMethod(method).started->Increment(); }

  void OnFinished(const Finished& call) override {
    GrpcServerMetrics::Method& m = metrics_.ForMethod(call.method);
    if (call.messages_received > 0) m.received->Increment(static_cast<double>(call.messages_received));
    if (call.messages_sent > 0) m.sent->Increment(static_cast<double>(call.messages_sent));
    metrics_.Handled(m, static_cast<int>(call.code)).Increment();
    metrics_.CountHandled();
    if (m.handling != nullptr) m.handling->Observe(std::chrono::duration<double>(call.duration).count());
  }

 private:
  GrpcServerMetrics& metrics_;
};

}  // namespace

std::unique_ptr<http2::CallObserver> NewGrpcServerObserver(GrpcServerMetrics& metrics) {
  return std::make_unique<CallObserver>(metrics);
}

}  // namespace praefect::metrics
