#include "server/observability.h"

#include <map>
#include <string>

#include "metrics/client_interceptor.h"

namespace praefect::server {

nodes::MakeInterceptors CountNodeCalls(metrics::Metrics* metrics) {
  return [metrics] {
    std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> out;
    out.push_back(metrics::NewClientInterceptorFactory(metrics));
    return out;
  };
}

datastore::RepositoryCache::AccessObserver CacheAccessCounters(metrics::Metrics& metrics,
                                                               const nodes::NodeSet& nodes) {
  struct Counters {
    std::string virtual_storage;
    std::vector<metrics::Counter> by_access;  // indexed by RepositoryCache::Access
  };
  auto counters = std::make_shared<std::vector<Counters>>();
  for (const auto& vs : nodes.virtual_storages()) {
    Counters c{vs.name, {}};
    for (const char* type : {"hit", "miss", "populate", "evict"}) c.by_access.push_back(metrics.CacheAccess(vs.name, type));
    counters->push_back(std::move(c));
  }
  return [counters](std::string_view vs, datastore::RepositoryCache::Access access) {
    for (Counters& c : *counters) {
      if (c.virtual_storage == vs) {
        c.by_access[static_cast<size_t>(access)].Increment();
        return;
      }
    }
  };
}

nodes::NodeSet::HealthObserver NodeHealthMetrics(metrics::Metrics& metrics, const nodes::NodeSet& nodes) {
  auto healthy = std::make_shared<std::map<const nodes::Node*, metrics::Gauge>>();
  for (const auto& vs : nodes.virtual_storages()) {
    for (const auto& node : vs.nodes) healthy->emplace(node.get(), metrics.NodeHealthy(vs.name, node->storage));
  }
  return [&metrics, healthy](const nodes::Node& node, std::chrono::nanoseconds latency, bool ok) {
    metrics.NodeLatency(node.storage).ObserveDuration(latency);
    if (auto it = healthy->find(&node); it != healthy->end()) it->second.Set(ok ? 1 : 0);
  };
}

void PreregisterElections(metrics::Metrics& metrics, const nodes::NodeSet& nodes) {
  for (const auto& vs : nodes.virtual_storages()) {
    for (const auto& node : vs.nodes) (void)metrics.PrimaryElections(vs.name, node->storage);
  }
}

std::unique_ptr<DatabaseMetrics> NewDatabaseMetrics(const config::Config& config, const nodes::NodeSet& nodes,
                                                    datastore::GaugesStore* store,
                                                    std::chrono::milliseconds health_window) {
  if (store == nullptr) return nullptr;
  DatabaseMetrics::Configured configured;
  for (const auto& vs : nodes.virtual_storages()) {
    configured.virtual_storages.push_back(vs.name);
    for (const auto& node : vs.nodes) configured.storages.emplace_back(vs.name, node->storage);
  }
  const auto verification = config.background_verification.verification_interval;
  configured.verification = verification.count() > 0;
  datastore::GaugesQuery query;
  query.health_window = health_window;
  if (configured.verification)
    query.verification_interval = std::chrono::duration_cast<std::chrono::milliseconds>(verification);
  query.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(config.prometheus.scrape_timeout);
  if (query.timeout.count() <= 0) query.timeout = std::chrono::seconds(10);
  return std::make_unique<DatabaseMetrics>(std::move(configured), [store, query] { return store->QueryGauges(query); });
}

std::vector<metrics::Exposer::Endpoint> MetricsEndpoints(const metrics::Metrics& metrics, DatabaseMetrics* db) {
  return {metrics::MetricsEndpoint(metrics),
          {"/db_metrics", [db]() -> std::string {
             if (db == nullptr) return "# no [database] configured: praefect keeps no database gauges\n";
             return db->Render();
           }}};
}

}  // namespace praefect::server
