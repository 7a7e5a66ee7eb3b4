#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "config/config.h"
#include "datastore/gauges_store.h"
#include "datastore/repository_cache.h"
#include "metrics/exposer.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"
#include "server/db_metrics.h"

// How `praefect serve` feeds its metrics (praefect-metrics(7)): the hooks
// it gives the nodes, the read cache and the router, and the endpoints of
// the metrics server. server.cc wires them.
namespace praefect::server {

// praefect's own calls on the nodes' channels, counted (grpc_client_*).
// REQUIRES: `metrics` outlives the channels.
nodes::MakeInterceptors CountNodeCalls(metrics::Metrics* metrics);

// gitaly_praefect_uptodate_storages_cache_access_total of every configured
// virtual storage, resolved once: an access costs a short scan and an
// atomic add.
datastore::RepositoryCache::AccessObserver CacheAccessCounters(metrics::Metrics& metrics,
                                                               const nodes::NodeSet& nodes);

// After each health check: gitaly_praefect_node_latency and
// gitaly_praefect_node_healthy (every configured node's series from now).
// REQUIRES: `metrics` and `nodes` outlive the observer.
nodes::NodeSet::HealthObserver NodeHealthMetrics(metrics::Metrics& metrics, const nodes::NodeSet& nodes);

// gitaly_praefect_primary_elections_total's series for every configured
// node, at 0.
void PreregisterElections(metrics::Metrics& metrics, const nodes::NodeSet& nodes);

// /db_metrics of `config` over `store` (null without [database]: the path
// answers a comment and no series).
std::unique_ptr<DatabaseMetrics> NewDatabaseMetrics(const config::Config& config, const nodes::NodeSet& nodes,
                                                    datastore::GaugesStore* store,
                                                    std::chrono::milliseconds health_window);

// The metrics server's paths: /metrics and /db_metrics.
// REQUIRES: both outlive the Exposer given them.
std::vector<metrics::Exposer::Endpoint> MetricsEndpoints(const metrics::Metrics& metrics, DatabaseMetrics* db);

}  // namespace praefect::server
