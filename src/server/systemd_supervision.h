#pragma once

#include <memory>

#include <grpcpp/server.h>

#include "datastore/datastore.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"
#include "server/status_reporter.h"
#include "systemd/watchdog.h"

namespace praefect::server {

// What praefect tells systemd while it runs: STATUS= every few seconds and,
// when the unit sets WatchdogSec= (WATCHDOG_USEC for our pid), WATCHDOG=1 at
// half the interval after a liveness check: a grpc.health.v1 Check through
// the server's in-process channel (the server's threads and completion
// queues turn) and a database pool that answers or fails fast (a database
// outage does not count as death). Create only when systemd::NotifyEnabled().
// The pointees must outlive it; destroying it stops both threads.
class SystemdSupervision {
 public:
  SystemdSupervision(grpc::Server* server, const nodes::NodeSet* nodes, datastore::Datastore* store,
                     const metrics::Metrics* metrics);
  ~SystemdSupervision();
  SystemdSupervision(const SystemdSupervision&) = delete;
  SystemdSupervision& operator=(const SystemdSupervision&) = delete;

 private:
  bool Alive();

  std::shared_ptr<grpc::Channel> self_;
  StatusReporter reporter_;
  std::unique_ptr<systemd::Watchdog> watchdog_;
};

}  // namespace praefect::server
