#include "systemd/watchdog.h"

#include "log/log.h"
#include "systemd/notify.h"

namespace praefect::systemd {

Watchdog::Watchdog(std::chrono::microseconds interval, Check alive, Ping ping)
    : period_(interval / 2),
      alive_(std::move(alive)),
      ping_(ping ? std::move(ping) : Ping([] { NotifyWatchdog(); })) {}

Watchdog::~Watchdog() { Stop(); }

void Watchdog::Start() { thread_ = std::thread([this] { Loop(); }); }

void Watchdog::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::Loop() {
  bool was_alive = true;
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, next, [this] { return stop_; })) return;
    }
    // The next ping is due one period after this one was due, not after the
    // check returned: a slow check must not stretch the rhythm.
    next += period_;
    const bool alive = alive_();
    if (alive) ping_();
    if (alive != was_alive) {
      if (alive) {
        log::Info("watchdog: the liveness check passes again; WATCHDOG=1 resumed");
      } else {
        log::Error("watchdog: the liveness check failed; WATCHDOG=1 withheld, systemd restarts praefect when "
                   "WatchdogSec= passes without one",
                   {{"period_ms", static_cast<long long>(
                                      std::chrono::duration_cast<std::chrono::milliseconds>(period_).count())}});
      }
      was_alive = alive;
    }
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;
  }
}

}  // namespace praefect::systemd
