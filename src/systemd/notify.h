#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// Messages to the service manager (sd_notify(3)) for a Type=notify unit.
// Without $NOTIFY_SOCKET (praefect not started by systemd) every function
// does nothing and returns false. Thread-safe: each message is one datagram.
namespace praefect::systemd {

// True when $NOTIFY_SOCKET is set.
[[nodiscard]] bool NotifyEnabled();

// READY=1: startup finished (listeners bound, database answering) or a
// reload finished.
bool NotifyReady();
// RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC now>, as systemd 253+
// expects from a reloading service (252 ignores MONOTONIC_USEC).
bool NotifyReloading();
// STOPPING=1: a graceful stop has begun.
bool NotifyStopping();
// STATUS=<text>: one line shown by `systemctl status` (newlines become spaces).
bool NotifyStatus(std::string_view status);
// EXTEND_TIMEOUT_USEC=<usec>: the start (or stop) timeout is extended so
// that it expires no earlier than `extension` from now.
bool NotifyExtendTimeout(std::chrono::microseconds extension);
// WATCHDOG=1.
bool NotifyWatchdog();

// The messages as sent, for tests.
std::string ReloadingMessage(std::chrono::microseconds monotonic_now);
std::string StatusMessage(std::string_view status);

// The interval systemd expects WATCHDOG=1 within, when $WATCHDOG_USEC is set
// and $WATCHDOG_PID is unset or names this process (sd_watchdog_enabled(3));
// nullopt otherwise, also without $NOTIFY_SOCKET.
std::optional<std::chrono::microseconds> WatchdogInterval();

// CLOCK_MONOTONIC now, in microseconds.
std::chrono::microseconds MonotonicNow();

}  // namespace praefect::systemd
