#pragma once

#include <memory>

#include <chrono>
#include <functional>

#include "datastore/datastore.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"
#include "server/status_reporter.h"
#include "systemd/watchdog.h"

namespace praefect::server {

// What praefect tells systemd while it runs: STATUS= every few seconds and,
// when the unit sets WatchdogSec= (WATCHDOG_USEC for our pid), WATCHDOG=1 at
// half the interval after a liveness check: every loop of the data plane
// turns within the time (`loops_turn`), and the database pool answers or
// fails fast (a database outage does not count as death). Create only when systemd::NotifyEnabled().
// The pointees must outlive it; destroying it stops both threads.
class SystemdSupervision {
 public:
  // `loops_turn(timeout)`: whether the data plane's loops all ran a task
  // within `timeout`.
  using LoopsTurn = std::function<bool(std::chrono::milliseconds timeout)>;
  // `more`: appended to STATUS= (see StatusReporter).
  SystemdSupervision(LoopsTurn loops_turn, const nodes::NodeSet* nodes, datastore::Datastore* store,
                     const metrics::Metrics* metrics, StatusReporter::More more = nullptr);
  ~SystemdSupervision();
  SystemdSupervision(const SystemdSupervision&) = delete;
  SystemdSupervision& operator=(const SystemdSupervision&) = delete;

 private:
  bool Alive();

  const LoopsTurn loops_turn_;
  StatusReporter reporter_;
  std::unique_ptr<systemd::Watchdog> watchdog_;
};

}  // namespace praefect::server
