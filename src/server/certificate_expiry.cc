#include "server/certificate_expiry.h"

#include <ctime>

namespace praefect::server {
namespace {

// "2026-12-08" (with_time: "2026-12-08 12:00:00 UTC").
std::string UtcDate(std::chrono::system_clock::time_point time, bool with_time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  struct tm tm {};
  char buf[40];
  if (gmtime_r(&t, &tm) == nullptr ||
      std::strftime(buf, sizeof buf, with_time ? "%Y-%m-%d %H:%M:%S UTC" : "%Y-%m-%d", &tm) == 0) {
    return std::to_string(t) + " (Unix time)";
  }
  return buf;
}

// "5 days", "1 day", "7 hours", "1 hour", "less than an hour". REQUIRES: left > 0.
std::string Remaining(std::chrono::system_clock::duration left) {
  const auto days = std::chrono::duration_cast<std::chrono::days>(left).count();
  if (days >= 1) return std::to_string(days) + (days == 1 ? " day" : " days");
  const auto hours = std::chrono::duration_cast<std::chrono::hours>(left).count();
  if (hours >= 1) return std::to_string(hours) + (hours == 1 ? " hour" : " hours");
  return "less than an hour";
}

}  // namespace

std::string CertificateExpiryStatus(std::chrono::system_clock::time_point not_after,
                                    std::chrono::system_clock::time_point now) {
  const auto left = not_after - now;
  if (left >= kExpiryNotice) return "";
  if (left <= std::chrono::system_clock::duration::zero())
    return "; TLS certificate expired on " + UtcDate(not_after, false);
  return "; TLS certificate expires in " + Remaining(left) + " (" + UtcDate(not_after, false) + ")";
}

std::optional<std::string> ExpiryWarnings::Due(std::chrono::system_clock::time_point not_after,
                                               std::chrono::system_clock::time_point now,
                                               const std::string& certificate_path) {
  const auto left = not_after - now;
  if (left >= kExpiryNotice) return std::nullopt;
  if (warned_at_ && warned_not_after_ == not_after && now - *warned_at_ < std::chrono::hours(24))
    return std::nullopt;
  warned_at_ = now;
  warned_not_after_ = not_after;
  const std::string which = "the TLS certificate tls.certificate_path \"" + certificate_path + "\"";
  if (left <= std::chrono::system_clock::duration::zero()) {
    return which + " expired on " + UtcDate(not_after, true) +
           ": clients refuse it; install a renewed certificate (and its key) and run systemctl reload praefect";
  }
  return which + " expires in " + Remaining(left) + " (" + UtcDate(not_after, true) +
         "): renew it before then (an ACME client's deploy hook installs it and reloads praefect: see "
         "praefect(8), TLS); praefect serves a renewed certificate without dropping connections";
}

}  // namespace praefect::server
