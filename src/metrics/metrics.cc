#include "metrics/metrics.h"

#include <algorithm>
#include <sstream>

#include <prometheus/text_serializer.h>

#include "metrics/grpc_server_metrics.h"
#include "metrics/server_interceptor.h"

namespace praefect::metrics {

namespace {

// prometheus/client_golang's DefBuckets.
const std::vector<double> kDefBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// prometheus-cpp throws on unsorted boundaries; config validation rejects
// them, but a throw from a gRPC thread would end the process.
std::vector<double> SortedBuckets(std::vector<double> buckets) {
  std::sort(buckets.begin(), buckets.end());
  buckets.erase(std::unique(buckets.begin(), buckets.end()), buckets.end());
  return buckets;
}

}  // namespace

void Counter::Increment(double by) { counter_->Increment(by); }
double Counter::Value() const { return counter_->Value(); }
void Histogram::Observe(double value) { histogram_->Observe(value); }

struct Metrics::Impl {
  explicit Impl(Options options)
      : now(options.now ? std::move(options.now) : SteadyNow(&std::chrono::steady_clock::now)),
        node_latency_buckets(options.grpc_latency_buckets.empty() ? kDefBuckets
                                                                  : SortedBuckets(options.grpc_latency_buckets)),
        grpc_server(registry, SortedBuckets(std::move(options.grpc_latency_buckets)), std::move(options.grpc_type)),
        // Praefect declares these without help texts; these say what they count.
        method_types(prometheus::BuildCounter()
                         .Name("gitaly_praefect_method_types")
                         .Help("Calls proxied by praefect, by method type (accessor, mutator, ...).")
                         .Register(registry)),
        node_latency(prometheus::BuildHistogram()
                         .Name("gitaly_praefect_node_latency")
                         .Help("Latency of a health check of a storage node, in seconds.")
                         .Register(registry)),
        authentications(prometheus::BuildCounter()
                            .Name("gitaly_authentications_total")
                            .Help("Counts of authentications by enforcement and outcome.")
                            .Register(registry)) {}

  const SteadyNow now;
  const std::vector<double> node_latency_buckets;
  prometheus::Registry registry;
  GrpcServerMetrics grpc_server;
  prometheus::Family<prometheus::Counter>& method_types;
  prometheus::Family<prometheus::Histogram>& node_latency;
  prometheus::Family<prometheus::Counter>& authentications;
};

Metrics::Metrics(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Metrics::~Metrics() = default;

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Metrics::NewServerInterceptorFactory() {
  return std::make_unique<ServerMetricsInterceptorFactory>(impl_->grpc_server, impl_->now);
}

void Metrics::PreregisterMethod(std::string_view full_method) {
  GrpcServerMetrics::Method& method = impl_->grpc_server.ForMethod(full_method);
  for (int code = 0; code <= static_cast<int>(grpc::StatusCode::UNAUTHENTICATED); ++code) {
    (void)impl_->grpc_server.Handled(method, code);
  }
}

Counter Metrics::MethodTypeCounter(std::string_view method_type) {
  return Counter(&impl_->method_types.Add({{"method_type", std::string(method_type)}}));
}

Histogram Metrics::NodeLatency(std::string_view storage) {
  return Histogram(&impl_->node_latency.Add({{"gitaly_storage", std::string(storage)}}, impl_->node_latency_buckets));
}

Counter Metrics::Authentications(bool enforced, std::string_view status) {
  return Counter(&impl_->authentications.Add(
      {{"enforced", enforced ? "true" : "false"}, {"status", std::string(status)}}));
}

std::string Metrics::Render() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, impl_->registry.Collect());
  return out.str();
}

}  // namespace praefect::metrics
