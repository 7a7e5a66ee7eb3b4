#pragma once

// Internal to src/metrics/: includes prometheus-cpp.

#include <array>
#include <functional>
#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "metrics/metrics.h"

namespace praefect::metrics {

struct SideNames;

// "/pkg.Service/Method" -> {"pkg.Service", "Method"}; {"unknown", "unknown"}
// without a second slash, as go-grpc-prometheus' splitMethodName.
std::pair<std::string, std::string> SplitMethodName(std::string_view full_method);

// go-grpc-prometheus' ServerMetrics on a prometheus-cpp registry: the four
// counter families and the optional handling-time histogram, with the series
// of each method cached so that a call costs one shared-lock lookup.
// Thread-safe.
class GrpcServerMetrics {
 public:
  // The series of one method (grpc_method, grpc_service, grpc_type fixed).
  struct Method {
    prometheus::Counter* started = nullptr;
    prometheus::Counter* received = nullptr;
    prometheus::Counter* sent = nullptr;
    prometheus::Histogram* handling = nullptr;  // nullptr: histogram disabled
    prometheus::Labels labels;                  // without grpc_code
    std::string full_method;                    // the key it is found by ("unknown" for unknown ones)
    // grpc_server_handled_total by code, created on first use.
    std::array<std::atomic<prometheus::Counter*>, 17> handled{};
    // The same method's series in another GrpcServerMetrics (the client
    // side's), remembered by Peer() so that a call's end costs one lookup.
    std::atomic<Method*> peer{nullptr};
  };

  enum class Side { kServer, kClient };

  // REQUIRES: `registry` outlives this object. kServer: grpc_server_*, the
  // calls praefect serves; kClient: grpc_client_*, the calls it makes.
  GrpcServerMetrics(prometheus::Registry& registry, std::vector<double> buckets, GrpcTypeLookup lookup,
                    Side side = Side::kServer);

  // The series of `full_method`, created on first use.
  Method& ForMethod(std::string_view full_method);

  // `method`'s series in `other` (the same method name), cached in `method`.
  static Method& Peer(Method& method, GrpcServerMetrics& other);

  // grpc_server_handled_total of `method` for `code` (a grpc::StatusCode).
  prometheus::Counter& Handled(Method& method, int code);

  // Calls handled since start, every method and code together: one relaxed
  // atomic, cheaper than summing the families (for systemd's STATUS=).
  void CountHandled() { handled_calls_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t handled_calls() const { return handled_calls_.load(std::memory_order_relaxed); }

 private:
  GrpcServerMetrics(prometheus::Registry& registry, std::vector<double> buckets, GrpcTypeLookup lookup,
                    const SideNames& names);

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& sent_;
  prometheus::Family<prometheus::Histogram>* handling_;  // nullptr without buckets
  const std::vector<double> buckets_;
  const GrpcTypeLookup lookup_;

  std::atomic<uint64_t> handled_calls_{0};

  std::shared_mutex mu_;
  // Keyed by full method name; entries are never removed, so references
  // handed out stay valid. GUARDED_BY(mu_)
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view name) const { return std::hash<std::string_view>()(name); }
  };
  std::unordered_map<std::string, std::unique_ptr<Method>, NameHash, std::equal_to<>> methods_;
};

}  // namespace praefect::metrics
