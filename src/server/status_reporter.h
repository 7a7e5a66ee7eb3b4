#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "datastore/datastore.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"

namespace praefect::server {

// Live figures for systemd's STATUS= (`systemctl status praefect`): healthy
// nodes, queued replication jobs and the RPC rate, every `period`, then what
// `more` adds (the TLS certificate's expiry when near). Counting
// the queue is also the database probe the watchdog relies on: see
// DatabaseResponsive. Thread-safe; the pointees must outlive it.
class StatusReporter {
 public:
  using Send = std::function<void(std::string_view status)>;
  // Text appended to each report ("; ..."), or "". Called on the
  // reporter's thread.
  using More = std::function<std::string()>;
  StatusReporter(const nodes::NodeSet* nodes, datastore::Datastore* store, const metrics::Metrics* metrics,
                 std::chrono::milliseconds period, Send send, More more = nullptr);
  ~StatusReporter();
  StatusReporter(const StatusReporter&) = delete;
  StatusReporter& operator=(const StatusReporter&) = delete;

  // A first report at once, then one every period. Call at most once.
  void Start();
  // Idempotent.
  void Stop();

  // False only while one database probe has been running for longer than
  // `limit`: the pool hangs instead of answering or failing. A database that
  // is down fails fast (the pool's backoff), which counts as responsive:
  // praefect keeps serving what it can and retries, so a database outage
  // must not get it killed by the watchdog.
  [[nodiscard]] bool DatabaseResponsive(std::chrono::steady_clock::duration limit) const;

 private:
  void Loop();
  std::string Report();

  const nodes::NodeSet* nodes_;
  datastore::Datastore* store_;
  const metrics::Metrics* metrics_;
  const std::chrono::milliseconds period_;
  const Send send_;
  const More more_;
  // steady_clock ticks when the running probe started; 0: none running.
  std::atomic<int64_t> probe_started_{0};
  // Only the reporter's thread touches these.
  uint64_t last_handled_ = 0;
  std::chrono::steady_clock::time_point last_time_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace praefect::server
