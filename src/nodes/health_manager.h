#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "datastore/datastore.h"
#include "nodes/node_set.h"

// Health consensus: after every local round of health checks this praefect
// records what it saw in the datastore (node_status) and reads back the
// quorum view, which every praefect of the cluster computes alike. The
// quorum view decides elections (in the datastore, see GetPrimary) and which
// node a new repository starts on; the local view (Node::healthy) routes
// reads, since a node this praefect cannot reach is of no use to its calls.
namespace praefect::nodes {

struct HealthManagerOptions {
  // Praefect's name in node_status: unique per praefect of the cluster.
  std::string praefect_name;
  // The quorum window (see Datastore::GetHealthyStorages).
  std::chrono::milliseconds window = std::chrono::seconds(10);
  // The clock of AwaitRecorded's freshness (tests inject one); null: the
  // steady clock.
  std::function<std::chrono::steady_clock::time_point()> now;
};

// Thread-safe. `store` and `nodes` must outlive it.
class HealthManager {
 public:
  HealthManager(datastore::Datastore* store, NodeSet* nodes, HealthManagerOptions options);
  ~HealthManager();
  HealthManager(const HealthManager&) = delete;
  HealthManager& operator=(const HealthManager&) = delete;

  // Hooks into `nodes`' rounds (call before NodeSet::StartHealthChecks) and
  // starts the thread that writes them to the datastore.
  void Start();
  void Stop();

  // Records the current local verdicts and refreshes the quorum view now
  // (Start does this after every round). Returns the datastore's error.
  [[nodiscard]] Status Sync();

  // OK when this praefect may act on the quorum view, i.e. elect primaries:
  // its own checks were recorded by a Sync that succeeded after the last
  // one that failed, and within the window. Otherwise (the database was
  // unreachable, or is back but this praefect has not recorded a round
  // since) asks for a round at once and waits up to `wait` for it to be
  // recorded; before Start, waits as long for the first Sync (serve's
  // listeners take calls before it). Why: after a database outage longer than the window every
  // praefect's node_status rows are stale, and an election run before they
  // are written again would find no node healthy and clear the primary of
  // every repository it touches. UNAVAILABLE saying so, and to retry.
  [[nodiscard]] Status AwaitRecorded(std::chrono::milliseconds wait);

  // The storages of `virtual_storage` healthy by quorum at the last
  // successful Sync; falls back to the local view when no Sync succeeded
  // within the window (the datastore is down: elections cannot happen
  // anyway, and creation on a locally healthy node is the best guess).
  std::vector<std::string> QuorumHealthy(std::string_view virtual_storage) const;

  const HealthManagerOptions& options() const { return options_; }

 private:
  void Loop();

  datastore::Datastore* store_;
  NodeSet* nodes_;
  const HealthManagerOptions options_;

  std::chrono::steady_clock::time_point Now() const;
  // REQUIRES: mu_ held.
  bool RecordedFresh(std::chrono::steady_clock::time_point now) const;

  mutable std::mutex mu_;
  std::condition_variable cv_;           // a round is pending, or stop
  std::condition_variable recorded_cv_;  // a Sync ended
  bool round_pending_ = false;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  bool running_ = false;        // GUARDED_BY(mu_): Loop's thread serves rounds
  datastore::HealthyStorages quorum_;                       // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point quorum_at_{};       // GUARDED_BY(mu_): last successful Sync
  std::chrono::steady_clock::time_point failed_at_{};       // GUARDED_BY(mu_): last failed Sync
  Status last_error_;                                       // GUARDED_BY(mu_): its error
  bool last_sync_failed_ = false;                           // GUARDED_BY(mu_)
  std::thread thread_;
};

// Praefect's name in node_status: "<hostname>:<listen address>" (the first
// of listen_addr, tls_listen_addr, socket_path that is set).
std::string PraefectName(const config::Config& config);

}  // namespace praefect::nodes
