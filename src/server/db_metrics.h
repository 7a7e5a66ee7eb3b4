#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/status_or.h"
#include "datastore/gauges_store.h"

namespace praefect::server {

// /db_metrics: Praefect's database gauges, read from PostgreSQL at each
// scrape (bounded by [prometheus] scrape_timeout), never on the request path:
//   gitaly_praefect_unavailable_repositories{virtual_storage}
//   gitaly_praefect_replication_queue_depth{virtual_storage,target_node,state}
//   gitaly_praefect_verification_queue_depth{virtual_storage,storage,status}
//   gitaly_praefect_primary_repositories{virtual_storage,storage} (praefect's own)
// Every configured virtual storage (and pair) has its series from the first
// scrape, 0 included; a queue group that had jobs and has none now reports
// 0 rather than its last value (Praefect keeps the last value of a
// verification pair its query no longer returns). A failed query logs a
// warning and the scrape has no series, as Praefect's. Scrapes of this
// endpoint run one at a time. Thread-safe.
class DatabaseMetrics {
 public:
  using Query = std::function<StatusOr<datastore::DatabaseGauges>()>;
  struct Configured {
    std::vector<std::string> virtual_storages;
    std::vector<std::pair<std::string, std::string>> storages;  // (virtual storage, storage)
    bool verification = false;  // the verification queue is reported
  };

  DatabaseMetrics(Configured configured, Query query);

  // The exposition-format text of one scrape.
  std::string Render();

 private:
  const Configured configured_;
  const Query query_;
  std::mutex mu_;
  // Queue groups seen with jobs, reported as 0 once they are gone.
  std::set<std::tuple<std::string, std::string, std::string>> queue_seen_;  // GUARDED_BY(mu_)
};

// A label value escaped for the text exposition format.
std::string EscapeLabelValue(std::string_view value);

}  // namespace praefect::server
