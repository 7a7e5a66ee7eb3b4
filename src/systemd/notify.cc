#include "systemd/notify.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <cstdlib>

namespace praefect::systemd {
namespace {

bool Send(const std::string& state) {
  if (!NotifyEnabled()) return false;
  // unset_environment = 0: every later message goes to the same socket.
  return sd_notify(0, state.c_str()) > 0;
}

}  // namespace

bool NotifyEnabled() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  return socket != nullptr && socket[0] != '\0';
}

std::chrono::microseconds MonotonicNow() {
  struct timespec ts {};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::microseconds(ts.tv_nsec / 1000);
}

std::string ReloadingMessage(std::chrono::microseconds monotonic_now) {
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_now.count());
}

std::string StatusMessage(std::string_view status) {
  std::string line(status);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "STATUS=" + line;
}

bool NotifyReady() { return Send("READY=1"); }
bool NotifyReloading() { return Send(ReloadingMessage(MonotonicNow())); }
bool NotifyStopping() { return Send("STOPPING=1"); }
bool NotifyStatus(std::string_view status) { return Send(StatusMessage(status)); }
bool NotifyWatchdog() { return Send("WATCHDOG=1"); }

bool NotifyExtendTimeout(std::chrono::microseconds extension) {
  return Send("EXTEND_TIMEOUT_USEC=" + std::to_string(extension.count()));
}

std::optional<std::chrono::microseconds> WatchdogInterval() {
  if (!NotifyEnabled()) return std::nullopt;
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is valid and WATCHDOG_PID is unset or ours.
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace praefect::systemd
