#include "metrics/client_interceptor.h"

#include <chrono>
#include <string>

namespace praefect::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

class CountingInterceptor final : public grpc::experimental::Interceptor {
 public:
  CountingInterceptor(Metrics* metrics, const char* method) : metrics_(metrics), method_(method) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      started_ = std::chrono::steady_clock::now();
      metrics_->ClientCallStarted(method_);
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) ++sent_;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) ++received_;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_STATUS)) {
      const grpc::Status* status = methods->GetRecvStatus();
      metrics_->ClientCallFinished(method_, status != nullptr ? static_cast<int>(status->error_code()) : 2,
                                   std::chrono::steady_clock::now() - started_, sent_, received_);
    }
    methods->Proceed();
  }

 private:
  Metrics* const metrics_;
  const std::string method_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  uint64_t sent_ = 0;
  uint64_t received_ = 0;
};

class Factory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit Factory(Metrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo* info) override {
    return new CountingInterceptor(metrics_, info->method() != nullptr ? info->method() : "unknown");
  }

 private:
  Metrics* const metrics_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface> NewClientInterceptorFactory(Metrics* metrics) {
  return std::make_unique<Factory>(metrics);
}

}  // namespace praefect::metrics
