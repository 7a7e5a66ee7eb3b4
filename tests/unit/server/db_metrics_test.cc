// /db_metrics as Prometheus reads it: every configured virtual storage and
// pair from the first scrape, queue groups that empty report 0, a failed
// query leaves the scrape empty, label values escaped, and the text passes
// `promtool check metrics`.
#include "server/db_metrics.h"

#include <cstdio>
#include <string>
#include <unistd.h>

#include "test_support.h"

using praefect::StatusOr;
using praefect::datastore::DatabaseGauges;
using praefect::server::DatabaseMetrics;

namespace {

DatabaseMetrics::Configured TwoNodes() {
  DatabaseMetrics::Configured c;
  c.virtual_storages = {"default"};
  c.storages = {{"default", "gitaly-1"}, {"default", "gitaly-2"}};
  c.verification = true;
  return c;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

// What `promtool check metrics` says of `text` ("" when clean).
std::string Promtool(const std::string& text) {
  char path[] = "/tmp/db-metrics-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return "mkstemp failed";
  (void)!write(fd, text.data(), text.size());
  close(fd);
  std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (p != nullptr && fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int rc = p == nullptr ? -1 : pclose(p);
  unlink(path);
  if (rc != 0 && out.empty()) out = "promtool exited " + std::to_string(rc);
  return out;
}

void ZerosForEveryConfiguredSeries(void**) {
  DatabaseMetrics m(TwoNodes(), [] { return StatusOr<DatabaseGauges>(DatabaseGauges{}); });
  std::string text = m.Render();
  expect_that(Has(text, "gitaly_praefect_unavailable_repositories{virtual_storage=\"default\"} 0"), text);
  for (std::string s : {"gitaly-1", "gitaly-2"}) {
    expect_that(Has(text, "gitaly_praefect_verification_queue_depth{status=\"unverified\",storage=\"" + s +
                              "\",virtual_storage=\"default\"} 0"),
                text);
    expect_that(Has(text, "gitaly_praefect_primary_repositories{storage=\"" + s + "\",virtual_storage=\"default\"} 0"),
                text);
  }
  expect_that(text.find("replication_queue_depth") == std::string::npos, "no queue series before any job");
  std::string lint = Promtool(text);
  expect_that(lint.empty(), "promtool check metrics clean, got: " + lint);
}

void QueueGroupsThatEmptyReportZero(void**) {
  DatabaseGauges first;
  first.replication_queue = {{"default", "gitaly-2", "ready", 3}, {"default", "gitaly-2", "in_progress", 1}};
  first.unavailable = {{"default", 2}};
  first.primaries = {{"default", "gitaly-1", 7}};
  DatabaseGauges later;
  later.replication_queue = {{"default", "gitaly-2", "failed", 1}};
  int scrape = 0;
  DatabaseMetrics m(TwoNodes(), [&] { return StatusOr<DatabaseGauges>(scrape++ == 0 ? first : later); });
  std::string text = m.Render();
  expect_that(Has(text, "gitaly_praefect_replication_queue_depth{state=\"ready\",target_node=\"gitaly-2\","
                        "virtual_storage=\"default\"} 3"),
              text);
  expect_that(Has(text, "gitaly_praefect_unavailable_repositories{virtual_storage=\"default\"} 2"), text);
  expect_that(Has(text, "gitaly_praefect_primary_repositories{storage=\"gitaly-1\",virtual_storage=\"default\"} 7"),
              text);
  text = m.Render();
  expect_that(Has(text, "gitaly_praefect_replication_queue_depth{state=\"ready\",target_node=\"gitaly-2\","
                        "virtual_storage=\"default\"} 0"),
              "the drained group at 0: " + text);
  expect_that(Has(text, "gitaly_praefect_replication_queue_depth{state=\"failed\",target_node=\"gitaly-2\","
                        "virtual_storage=\"default\"} 1"),
              text);
  expect_that(Has(text, "gitaly_praefect_unavailable_repositories{virtual_storage=\"default\"} 0"), text);
  std::string lint = Promtool(text);
  expect_that(lint.empty(), "promtool check metrics clean, got: " + lint);
}

void FailedQueryLeavesTheScrapeEmpty(void**) {
  DatabaseMetrics m(TwoNodes(), [] {
    return StatusOr<DatabaseGauges>(praefect::Status(praefect::StatusCode::kDeadlineExceeded, "canceling statement"));
  });
  expect_that(m.Render().empty(), "no series when the database did not answer");
}

void LabelValuesEscaped(void**) {
  DatabaseMetrics::Configured c;
  c.virtual_storages = {"odd\"vs\\name"};
  DatabaseMetrics m(c, [] { return StatusOr<DatabaseGauges>(DatabaseGauges{}); });
  std::string text = m.Render();
  expect_that(Has(text, "gitaly_praefect_unavailable_repositories{virtual_storage=\"odd\\\"vs\\\\name\"} 0"), text);
  std::string lint = Promtool(text);
  expect_that(lint.empty(), "promtool check metrics clean, got: " + lint);
}

void NoVerificationSeriesWhenItIsOff(void**) {
  auto c = TwoNodes();
  c.verification = false;
  DatabaseMetrics m(c, [] { return StatusOr<DatabaseGauges>(DatabaseGauges{}); });
  expect_that(m.Render().find("verification_queue_depth") == std::string::npos, "verification is off");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ZerosForEveryConfiguredSeries),
      cmocka_unit_test(QueueGroupsThatEmptyReportZero),
      cmocka_unit_test(FailedQueryLeavesTheScrapeEmpty),
      cmocka_unit_test(LabelValuesEscaped),
      cmocka_unit_test(NoVerificationSeriesWhenItIsOff),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
