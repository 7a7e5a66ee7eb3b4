#pragma once

#include <chrono>
#include <optional>
#include <string>

// What praefect says about the serving certificate's expiry as it nears:
// a note in systemd's STATUS= line and a warning in the log once a day,
// from kExpiryNotice before notAfter on. Pure functions of the time given,
// so that tests choose it.
namespace praefect::server {

inline constexpr std::chrono::hours kExpiryNotice{14 * 24};

// "; TLS certificate expires in 5 days (2026-12-08)" (in 1 day, in 7 hours,
// in less than an hour) when `not_after` is less than kExpiryNotice after
// `now`; "; TLS certificate expired on 2026-12-08" after it; "" otherwise.
// The date is notAfter's, UTC.
std::string CertificateExpiryStatus(std::chrono::system_clock::time_point not_after,
                                    std::chrono::system_clock::time_point now);

// Decides when to log the expiry warning: at the first call within
// kExpiryNotice, then once every 24 hours, and again at once when the
// certificate changes (another notAfter). Not thread-safe: one caller.
class ExpiryWarnings {
 public:
  // The warning to log now, naming `certificate_path`, or nullopt.
  std::optional<std::string> Due(std::chrono::system_clock::time_point not_after,
                                 std::chrono::system_clock::time_point now, const std::string& certificate_path);

 private:
  std::optional<std::chrono::system_clock::time_point> warned_at_;
  std::chrono::system_clock::time_point warned_not_after_{};
};

}  // namespace praefect::server
