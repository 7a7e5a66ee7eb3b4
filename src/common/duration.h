#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/status_or.h"

namespace praefect {

using Duration = std::chrono::nanoseconds;

// Parses a duration in Go's time.ParseDuration syntax, as Praefect's
// config.toml spells them: a sequence of decimal numbers, each with an
// optional fraction and a unit ("ns", "us", "µs", "ms", "s", "m", "h"), an
// optional leading sign, or the bare "0". Examples: "5m", "72h", "1m30s",
// "1.5h", "0". On error the message says what was wrong and shows the syntax.
StatusOr<Duration> ParseGoDuration(std::string_view text);

// Formats like Go's Duration.String(): "1h0m0s", "1m30s", "1.5s", "250ms", "0s".
std::string FormatGoDuration(Duration d);

}  // namespace praefect
