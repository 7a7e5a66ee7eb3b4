#include "server/systemd_supervision.h"

#include <algorithm>

#include "log/log.h"
#include "systemd/notify.h"

namespace praefect::server {
namespace {

constexpr std::chrono::seconds kStatusPeriod{5};
// The datastore bounds every call by 10 s (PostgresDatastore's call
// timeout); a probe running three times that long means the pool hangs.
constexpr std::chrono::seconds kDatabaseHangs{30};

}  // namespace

SystemdSupervision::SystemdSupervision(LoopsTurn loops_turn, const nodes::NodeSet* nodes,
                                       datastore::Datastore* store, const metrics::Metrics* metrics,
                                       StatusReporter::More more)
    : loops_turn_(std::move(loops_turn)),
      reporter_(nodes, store, metrics, kStatusPeriod, [](std::string_view status) { systemd::NotifyStatus(status); },
                std::move(more)) {
  reporter_.Start();
  if (auto interval = systemd::WatchdogInterval()) {
    watchdog_ = std::make_unique<systemd::Watchdog>(*interval, [this] { return Alive(); });
    log::Info("systemd watchdog enabled: WATCHDOG=1 after each passing liveness check",
              {{"watchdog_usec", static_cast<long long>(interval->count())},
               {"period_ms", static_cast<long long>(
                                 std::chrono::duration_cast<std::chrono::milliseconds>(watchdog_->period()).count())}});
    watchdog_->Start();
  }
}

SystemdSupervision::~SystemdSupervision() {
  if (watchdog_) watchdog_->Stop();
  reporter_.Stop();
}

bool SystemdSupervision::Alive() {
  const auto period = watchdog_ ? watchdog_->period() : std::chrono::microseconds(std::chrono::seconds(5));
  const auto timeout = std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(period / 2),
                                  std::chrono::milliseconds(50), std::chrono::milliseconds(5000));
  if (!loops_turn_(timeout)) {
    log::Warn("watchdog: a loop of the data plane did not turn within " + std::to_string(timeout.count()) +
              " ms; praefect may be wedged");
    return false;
  }
  if (!reporter_.DatabaseResponsive(kDatabaseHangs)) {
    log::Warn("watchdog: a database call has hung for over 30 s (not failed: hung); praefect may be wedged");
    return false;
  }
  return true;
}

}  // namespace praefect::server
