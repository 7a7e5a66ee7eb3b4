#include "server/db_metrics.h"

#include <map>
#include <sstream>

#include "log/log.h"

namespace praefect::server {

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

void Family(std::ostringstream& out, std::string_view name, std::string_view help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n";
}

void Sample(std::ostringstream& out, std::string_view name, const Labels& labels, int64_t value) {
  out << name << '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out << ',';
    first = false;
    out << k << "=\"" << EscapeLabelValue(v) << '"';
  }
  out << "} " << value << '\n';
}

}  // namespace

DatabaseMetrics::DatabaseMetrics(Configured configured, Query query)
    : configured_(std::move(configured)), query_(std::move(query)) {}

std::string DatabaseMetrics::Render() {
  std::lock_guard lock(mu_);
  auto gauges = query_();
  if (!gauges.ok()) {
    log::Warn("/db_metrics: the database gauges are left out of this scrape: " + gauges.status().message() +
                  ". Check that PostgreSQL answers; [prometheus] scrape_timeout bounds the queries",
              {{"error", gauges.status().message()}});
    return "";
  }
  std::ostringstream out;

  std::map<std::string, int64_t> unavailable;
  for (const auto& vs : configured_.virtual_storages) unavailable[vs] = 0;
  for (const auto& u : gauges->unavailable) unavailable[u.virtual_storage] = u.repositories;
  Family(out, "gitaly_praefect_unavailable_repositories",
         "Number of repositories that have no healthy, up to date replicas.");
  for (const auto& [vs, n] : unavailable) Sample(out, "gitaly_praefect_unavailable_repositories", {{"virtual_storage", vs}}, n);

  std::map<std::tuple<std::string, std::string, std::string>, int64_t> queue;
  for (const auto& key : queue_seen_) queue[key] = 0;
  for (const auto& q : gauges->replication_queue) {
    auto key = std::make_tuple(q.virtual_storage, q.target_node, q.state);
    queue[key] = q.jobs;
    queue_seen_.insert(key);
  }
  if (!queue.empty()) {
    Family(out, "gitaly_praefect_replication_queue_depth", "Number of jobs in the replication queue");
    for (const auto& [key, n] : queue) {
      const auto& [vs, target, state] = key;
      Sample(out, "gitaly_praefect_replication_queue_depth",
             {{"state", state}, {"target_node", target}, {"virtual_storage", vs}}, n);
    }
  }

  if (configured_.verification) {
    std::map<std::pair<std::string, std::string>, std::pair<int64_t, int64_t>> pending;
    for (const auto& pair : configured_.storages) pending[pair] = {0, 0};
    for (const auto& v : gauges->verification_queue) pending[{v.virtual_storage, v.storage}] = {v.unverified, v.expired};
    Family(out, "gitaly_praefect_verification_queue_depth", "Number of replicas pending verification.");
    for (const auto& [pair, n] : pending) {
      Sample(out, "gitaly_praefect_verification_queue_depth",
             {{"status", "expired"}, {"storage", pair.second}, {"virtual_storage", pair.first}}, n.second);
      Sample(out, "gitaly_praefect_verification_queue_depth",
             {{"status", "unverified"}, {"storage", pair.second}, {"virtual_storage", pair.first}}, n.first);
    }
  }

  std::map<std::pair<std::string, std::string>, int64_t> primaries;
  for (const auto& pair : configured_.storages) primaries[pair] = 0;
  for (const auto& p : gauges->primaries) primaries[{p.virtual_storage, p.storage}] = p.repositories;
  Family(out, "gitaly_praefect_primary_repositories", "Number of repositories whose primary is the storage.");
  for (const auto& [pair, n] : primaries)
    Sample(out, "gitaly_praefect_primary_repositories", {{"storage", pair.second}, {"virtual_storage", pair.first}}, n);
  return out.str();
}

}  // namespace praefect::server
