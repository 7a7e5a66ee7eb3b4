#include "metrics/grpc_server_metrics.h"

#include <mutex>

namespace praefect::metrics {

namespace {

constexpr int kKnownCodes = 17;  // OK .. Unauthenticated

}  // namespace

std::string_view GrpcTypeName(GrpcType type) {
  switch (type) {
    case GrpcType::kUnary:
      return "unary";
    case GrpcType::kClientStream:
      return "client_stream";
    case GrpcType::kServerStream:
      return "server_stream";
    case GrpcType::kBidiStream:
      return "bidi_stream";
  }
  return "bidi_stream";
}

std::string GrpcCodeName(int code) { return GoCodeName(code); }

std::pair<std::string, std::string> SplitMethodName(std::string_view full_method) {
  if (!full_method.empty() && full_method.front() == '/') full_method.remove_prefix(1);
  size_t slash = full_method.find('/');
  if (slash == std::string_view::npos) return {"unknown", "unknown"};
  return {std::string(full_method.substr(0, slash)), std::string(full_method.substr(slash + 1))};
}

// go-grpc-prometheus' names and help texts, which GitLab's dashboards query.
struct SideNames {
  const char* started;
  const char* started_help;
  const char* handled;
  const char* handled_help;
  const char* received;
  const char* received_help;
  const char* sent;
  const char* sent_help;
  const char* handling;
  const char* handling_help;
};

namespace {

const SideNames kServerNames = {
    "grpc_server_started_total", "Total number of RPCs started on the server.",
    "grpc_server_handled_total", "Total number of RPCs completed on the server, regardless of success or failure.",
    "grpc_server_msg_received_total", "Total number of RPC stream messages received on the server.",
    "grpc_server_msg_sent_total", "Total number of gRPC stream messages sent by the server.",
    "grpc_server_handling_seconds",
    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server."};

const SideNames kClientNames = {
    "grpc_client_started_total", "Total number of RPCs started on the client.",
    "grpc_client_handled_total", "Total number of RPCs completed by the client, regardless of success or failure.",
    "grpc_client_msg_received_total", "Total number of RPC stream messages received by the client.",
    "grpc_client_msg_sent_total", "Total number of gRPC stream messages sent by the client.",
    "grpc_client_handling_seconds",
    "Histogram of response latency (seconds) of the gRPC until it is finished by the application."};

}  // namespace

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry, std::vector<double> buckets,
                                     GrpcTypeLookup lookup, Side side)
    : GrpcServerMetrics(registry, std::move(buckets), std::move(lookup),
                        side == Side::kServer ? kServerNames : kClientNames) {}

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry, std::vector<double> buckets,
                                     GrpcTypeLookup lookup, const SideNames& names)
    : started_(prometheus::BuildCounter().Name(names.started).Help(names.started_help).Register(registry)),
      handled_(prometheus::BuildCounter().Name(names.handled).Help(names.handled_help).Register(registry)),
      received_(prometheus::BuildCounter().Name(names.received).Help(names.received_help).Register(registry)),
      sent_(prometheus::BuildCounter().Name(names.sent).Help(names.sent_help).Register(registry)),
      handling_(buckets.empty()
                    ? nullptr
                    : &prometheus::BuildHistogram().Name(names.handling).Help(names.handling_help).Register(registry)),
      buckets_(std::move(buckets)),
      lookup_(std::move(lookup)) {}

GrpcServerMetrics::Method& GrpcServerMetrics::ForMethod(std::string_view full_method) {
  {
    // By string_view: a known method costs no allocation.
    std::shared_lock lock(mu_);
    auto it = methods_.find(full_method);
    if (it != methods_.end()) return *it->second;
  }
  std::string key(full_method);
  // Outside the lock: the lookup is the caller's code.
  std::optional<GrpcType> known = lookup_ ? lookup_(full_method) : std::optional<GrpcType>(GrpcType::kBidiStream);
  if (!known) {
    // Every unknown name shares one series (and one cache entry).
    key = "unknown";
    full_method = "unknown";
    std::shared_lock lock(mu_);
    auto it = methods_.find(key);
    if (it != methods_.end()) return *it->second;
  }
  GrpcType type = known.value_or(GrpcType::kBidiStream);
  auto [service, method] = SplitMethodName(full_method);

  std::unique_lock lock(mu_);
  auto it = methods_.find(key);
  if (it != methods_.end()) return *it->second;
  auto m = std::make_unique<Method>();
  m->full_method = key;
  m->labels = {{"grpc_method", method}, {"grpc_service", service}, {"grpc_type", std::string(GrpcTypeName(type))}};
  m->started = &started_.Add(m->labels);
  m->received = &received_.Add(m->labels);
  m->sent = &sent_.Add(m->labels);
  if (handling_ != nullptr) m->handling = &handling_->Add(m->labels, buckets_);
  Method& added = *m;
  methods_.emplace(std::move(key), std::move(m));
  return added;
}

GrpcServerMetrics::Method& GrpcServerMetrics::Peer(Method& method, GrpcServerMetrics& other) {
  Method* peer = method.peer.load(std::memory_order_acquire);
  if (peer == nullptr) {
    // Racing threads find the same Method: other's entries are never removed.
    peer = &other.ForMethod(method.full_method);
    method.peer.store(peer, std::memory_order_release);
  }
  return *peer;
}

prometheus::Counter& GrpcServerMetrics::Handled(Method& method, int code) {
  if (code < 0 || code >= kKnownCodes) {
    prometheus::Labels labels = method.labels;
    labels["grpc_code"] = GrpcCodeName(code);
    return handled_.Add(labels);
  }
  prometheus::Counter* counter = method.handled[code].load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Racing threads get the same series: Family::Add returns the existing one.
    prometheus::Labels labels = method.labels;
    labels["grpc_code"] = GrpcCodeName(code);
    counter = &handled_.Add(labels);
    method.handled[code].store(counter, std::memory_order_release);
  }
  return *counter;
}

}  // namespace praefect::metrics
