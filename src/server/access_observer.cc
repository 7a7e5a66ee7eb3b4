#include "server/access_observer.h"

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "http2/grpc.h"
#include "log/access_log.h"

namespace praefect::server {
namespace {

class AccessObserver final : public http2::CallObserver {
 public:
  AccessObserver(std::vector<http2::CallObserver*> observers, std::function<bool(std::string_view)> streaming)
      : observers_(std::move(observers)), streaming_(std::move(streaming)) {}

  void OnStarted(std::string_view method) override {
    for (http2::CallObserver* o : observers_) o->OnStarted(method);
  }

  void OnUpstreamCall(std::string_view method) override {
    for (http2::CallObserver* o : observers_) o->OnUpstreamCall(method);
  }

  void OnFinished(const Finished& call) override {
    for (http2::CallObserver* o : observers_) o->OnFinished(call);
    const auto end = std::chrono::system_clock::now();
    log::FinishedCall line;
    line.full_method = call.method;
    line.streaming = streaming_ && streaming_(call.method);
    line.code = static_cast<int>(call.code);
    line.error = call.message;
    line.duration = call.duration;
    line.start = end - std::chrono::duration_cast<std::chrono::system_clock::duration>(call.duration);
    line.route_fields = call.route_fields;
    if (call.request_metadata != nullptr) {
      const http2::HeaderList& md = *call.request_metadata;
      if (const std::string* t = http2::FindHeader(md, "grpc-timeout")) {
        if (std::optional<std::chrono::nanoseconds> timeout = http2::rpc::ParseTimeout(*t))
          line.deadline = line.start + std::chrono::duration_cast<std::chrono::system_clock::duration>(*timeout);
      }
      if (const std::string* id = http2::FindHeader(md, "x-gitlab-correlation-id")) line.correlation_id = *id;
      if (const std::string* name = http2::FindHeader(md, "client_name")) line.client_name = *name;
    }
    log::LogFinishedCall(line);
  }

 private:
  const std::vector<http2::CallObserver*> observers_;
  const std::function<bool(std::string_view)> streaming_;
};

}  // namespace

std::unique_ptr<http2::CallObserver> NewAccessObserver(std::vector<http2::CallObserver*> observers,
                                                       std::function<bool(std::string_view method)> streaming) {
  return std::make_unique<AccessObserver>(std::move(observers), std::move(streaming));
}

}  // namespace praefect::server
