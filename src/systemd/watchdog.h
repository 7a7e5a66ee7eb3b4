#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

// The systemd watchdog: WATCHDOG=1 at half the interval systemd expects it
// within, each time only after a liveness check passed, so that a wedged
// praefect is restarted by systemd (WatchdogSec=) rather than kept alive by
// a timer thread that still runs.
namespace praefect::systemd {

// Thread-safe. Not copyable.
class Watchdog {
 public:
  // True when the process is alive enough to be kept. Runs on the
  // watchdog's thread; it should return within interval / 2.
  using Check = std::function<bool()>;
  using Ping = std::function<void()>;

  // `ping` defaults to NotifyWatchdog (WATCHDOG=1).
  Watchdog(std::chrono::microseconds interval, Check alive, Ping ping = {});
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts the thread: a check and (if it passed) a ping at once, then every
  // interval / 2. Call at most once.
  void Start();
  // Stops and joins the thread. Idempotent.
  void Stop();

  std::chrono::microseconds period() const { return period_; }

 private:
  void Loop();

  const std::chrono::microseconds period_;
  const Check alive_;
  const Ping ping_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace praefect::systemd
