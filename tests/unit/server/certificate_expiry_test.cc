// The serving certificate's expiry in STATUS= and the daily warning: the
// text an operator reads in `systemctl status praefect` and the journal.
#include "server/certificate_expiry.h"

#include <chrono>
#include <ctime>

#include "test_support.h"

using praefect::server::CertificateExpiryStatus;
using praefect::server::ExpiryWarnings;
using std::chrono::hours;
using std::chrono::minutes;

namespace {

std::chrono::system_clock::time_point Utc(int year, int month, int day, int hour = 0) {
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

const auto kNotAfter = Utc(2026, 12, 8, 12);

void ExpectStatus(std::chrono::system_clock::time_point now, const std::string& want) {
  const std::string got = CertificateExpiryStatus(kNotAfter, now);
  expect_that(got == want, "\"" + want + "\", got \"" + got + "\"");
}

void test_status_line_names_the_days_left_under_14_days(void**) {
  ExpectStatus(Utc(2026, 11, 1), "");                    // 37 days left: nothing
  ExpectStatus(kNotAfter - hours(14 * 24), "");          // exactly 14 days: nothing yet
  ExpectStatus(kNotAfter - hours(14 * 24) + minutes(1), "; TLS certificate expires in 13 days (2026-12-08)");
  ExpectStatus(Utc(2026, 12, 3, 12), "; TLS certificate expires in 5 days (2026-12-08)");
  ExpectStatus(Utc(2026, 12, 3, 13), "; TLS certificate expires in 4 days (2026-12-08)");
  ExpectStatus(Utc(2026, 12, 7, 11), "; TLS certificate expires in 1 day (2026-12-08)");
  ExpectStatus(Utc(2026, 12, 8, 5), "; TLS certificate expires in 7 hours (2026-12-08)");
  ExpectStatus(Utc(2026, 12, 8, 11), "; TLS certificate expires in 1 hour (2026-12-08)");
  ExpectStatus(kNotAfter - minutes(5), "; TLS certificate expires in less than an hour (2026-12-08)");
  ExpectStatus(kNotAfter + minutes(1), "; TLS certificate expired on 2026-12-08");
}

void test_warning_once_a_day_under_14_days(void**) {
  ExpiryWarnings warnings;
  const std::string path = "/etc/praefect/tls/cert.pem";
  expect_that(!warnings.Due(kNotAfter, Utc(2026, 11, 1), path), "no warning 37 days before");
  auto first = warnings.Due(kNotAfter, Utc(2026, 12, 3, 12), path);
  expect_that(first.has_value(), "a warning 5 days before");
  expect_that(*first ==
                  "the TLS certificate tls.certificate_path \"/etc/praefect/tls/cert.pem\" expires in 5 days "
                  "(2026-12-08 12:00:00 UTC): renew it before then (an ACME client's deploy hook installs it and "
                  "reloads praefect: see praefect(8), TLS); praefect serves a renewed certificate without dropping "
                  "connections",
              "the warning's text, got: " + *first);
  expect_that(!warnings.Due(kNotAfter, Utc(2026, 12, 3, 13), path), "not again an hour later");
  expect_that(!warnings.Due(kNotAfter, Utc(2026, 12, 4, 11), path), "not again 23 hours later");
  auto next_day = warnings.Due(kNotAfter, Utc(2026, 12, 4, 12), path);
  expect_that(next_day && next_day->find("expires in 4 days") != std::string::npos, "again 24 hours later");

  // A renewed certificate that still expires soon: said at once.
  const auto renewed = kNotAfter + hours(48);
  auto changed = warnings.Due(renewed, Utc(2026, 12, 4, 13), path);
  expect_that(changed && changed->find("expires in 5 days (2026-12-10 12:00:00 UTC)") != std::string::npos,
              "another certificate is reported at once");
  // Renewed for 90 days: nothing.
  expect_that(!warnings.Due(kNotAfter + hours(90 * 24), Utc(2026, 12, 4, 14), path), "a renewed certificate");

  ExpiryWarnings expired;
  auto late = expired.Due(kNotAfter, Utc(2026, 12, 9), path);
  expect_that(late && *late ==
                          "the TLS certificate tls.certificate_path \"/etc/praefect/tls/cert.pem\" expired on "
                          "2026-12-08 12:00:00 UTC: clients refuse it; install a renewed certificate (and its key) "
                          "and run systemctl reload praefect",
              "an expired certificate's warning, got: " + late.value_or("(none)"));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_line_names_the_days_left_under_14_days),
      cmocka_unit_test(test_warning_once_a_day_under_14_days),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
