#include "proxy/proxy.h"

#include "proxy/proxy_call.h"
#include "proxy/shared.h"

namespace praefect::proxy {

Proxy::Proxy(Director* director, const Options& options)
    : shared_(std::make_shared<Shared>(director, options)) {}

Proxy::~Proxy() = default;

ProxyStats Proxy::Stats() const {
  ProxyStats s;
  s.calls_started = shared_->calls_started.load();
  s.calls_active = shared_->calls_active.load();
  s.messages_buffered = shared_->messages_buffered.load();
  s.bytes_buffered = shared_->bytes_buffered.load();
  s.max_messages_buffered = shared_->max_messages_buffered.load();
  s.max_bytes_buffered = shared_->max_bytes_buffered.load();
  return s;
}

grpc::ServerGenericBidiReactor* Proxy::CreateReactor(grpc::GenericCallbackServerContext* context) {
  // Owns itself: deleted when both the client call and the upstream call
  // (if one was made) are done.
  auto* call = new internal::ProxyCall(shared_, context);
  return call->Start();
}

}  // namespace praefect::proxy
