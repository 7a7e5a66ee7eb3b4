#pragma once

#include <chrono>
#include <string_view>

#include "common/status_or.h"

// One SNTP (RFC 4330) query, as Gitaly's clock check makes it with
// beevik/ntp: how far this host's clock is from an NTP server's. POSIX UDP
// sockets beside the std-only utilities of common/: praefect's `check` and
// the test storage node both need it, and neither owns the other.
namespace praefect {

// "pool.ntp.org", Gitaly's default when NTP_HOST is empty.
inline constexpr std::string_view kDefaultNtpHost = "pool.ntp.org";

// The server's clock minus this host's clock, from one request to `host`
// ("name", "name:port", "[v6]:port"; port 123 when none), bounded by
// `timeout`. Errors, in Gitaly's words: "query ntp host: ..." (no answer,
// unresolvable name) and "validate ntp response: ..." (an answer that must
// not be trusted: unsynchronised server, kiss-of-death, wrong origin).
StatusOr<std::chrono::nanoseconds> QueryClockOffset(std::string_view host, std::chrono::milliseconds timeout);

// Whether |offset| <= drift_threshold, by QueryClockOffset (an empty host
// queries kDefaultNtpHost).
StatusOr<bool> ClockSynced(std::string_view host, std::chrono::nanoseconds drift_threshold,
                           std::chrono::milliseconds timeout);

}  // namespace praefect
