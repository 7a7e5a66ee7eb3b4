#include "log/access_log.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "test_support.h"

using namespace praefect::log;

namespace {

// 2026-11-22T03:14:29.123Z
std::chrono::system_clock::time_point FixedTime() {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(1795317269123LL));
}

class CaptureSink : public Sink {
 public:
  void Write(const Entry& e) override {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(StreamSink::FormatEntry(Entry{FixedTime(), e.level, e.message, e.fields}, Format::kJson));
    levels.push_back(e.level);
  }
  std::mutex mu;
  std::vector<std::string> lines;
  std::vector<Level> levels;
};

FinishedCall Call(int code, std::chrono::nanoseconds duration) {
  FinishedCall call;
  call.full_method = "/gitaly.RefService/FindDefaultBranchName";
  call.code = code;
  call.error = code == 0 ? "" : "gitaly-2: connection refused";
  call.start = FixedTime();
  call.duration = duration;
  return call;
}

}  // namespace

static void test_line_as_praefect_writes_it(void**) {
  SetAccessLevel(Level::kInfo);
  auto sink = std::make_shared<CaptureSink>();
  Logger logger(Level::kInfo, sink);
  std::vector<std::pair<std::string, std::string>> route = {
      {"virtual_storage", "default"}, {"storage", "gitaly-1"}, {"relative_path", "@hashed/ab/cd.git"}};
  FinishedCall call = Call(0, std::chrono::microseconds(1234567));
  call.correlation_id = "01HXYZ";
  call.client_name = "gitlab-web";
  call.deadline = FixedTime() + std::chrono::seconds(10);
  call.route_fields = &route;
  LogFinishedCall(call, logger);
  assert_int_equal(sink->lines.size(), 1);
  const std::string want =
      "{\"correlation_id\":\"01HXYZ\",\"grpc.code\":\"OK\",\"grpc.meta.client_name\":\"gitlab-web\","
      "\"grpc.method\":\"FindDefaultBranchName\",\"grpc.request.deadline\":\"2026-11-22T03:14:39.123Z\","
      "\"grpc.request.fullMethod\":\"/gitaly.RefService/FindDefaultBranchName\",\"grpc.service\":\"gitaly.RefService\","
      "\"grpc.start_time\":\"2026-11-22T03:14:29.123Z\",\"grpc.time_ms\":1234.567,\"level\":\"info\","
      "\"msg\":\"finished unary call with code OK\",\"pid\":" +
      std::to_string(getpid()) +
      ",\"relative_path\":\"@hashed/ab/cd.git\",\"span.kind\":\"server\",\"storage\":\"gitaly-1\","
      "\"system\":\"grpc\",\"time\":\"2026-11-22T03:14:29.123Z\",\"virtual_storage\":\"default\"}\n";
  expect_that(sink->lines[0] == want, "the access line:\n" + sink->lines[0] + "want\n" + want);
}

static void test_failed_and_streaming_calls(void**) {
  SetAccessLevel(Level::kInfo);
  auto sink = std::make_shared<CaptureSink>();
  Logger logger(Level::kInfo, sink);
  FinishedCall call = Call(14, std::chrono::microseconds(250));
  call.streaming = true;
  LogFinishedCall(call, logger);
  assert_int_equal(sink->lines.size(), 1);
  const std::string& line = sink->lines[0];
  expect_that(line.find("\"msg\":\"finished streaming call with code Unavailable\"") != std::string::npos, line);
  expect_that(line.find("\"error\":\"gitaly-2: connection refused\"") != std::string::npos, line);
  expect_that(line.find("\"grpc.time_ms\":0.25,") != std::string::npos, line);
  expect_that(line.find("\"level\":\"warning\"") != std::string::npos, "Unavailable is a warning: " + line);
  expect_that(line.find("correlation_id") == std::string::npos, "no correlation id, no field: " + line);
  expect_that(line.find("grpc.request.deadline") == std::string::npos, "no deadline, no field: " + line);
}

static void test_levels(void**) {
  // go-grpc-middleware's DefaultCodeToLevel under the configured level.
  for (int code : {0, 1, 3, 5, 6, 16}) assert_int_equal(static_cast<int>(AccessLineLevel(code, Level::kInfo)), static_cast<int>(Level::kInfo));
  for (int code : {4, 7, 8, 9, 10, 11, 14}) assert_int_equal(static_cast<int>(AccessLineLevel(code, Level::kInfo)), static_cast<int>(Level::kWarn));
  for (int code : {2, 12, 13, 15, 17, 99}) assert_int_equal(static_cast<int>(AccessLineLevel(code, Level::kInfo)), static_cast<int>(Level::kError));
  assert_int_equal(static_cast<int>(AccessLineLevel(0, Level::kDebug)), static_cast<int>(Level::kDebug));
  assert_int_equal(static_cast<int>(AccessLineLevel(14, Level::kDebug)), static_cast<int>(Level::kWarn));
  assert_int_equal(static_cast<int>(AccessLineLevel(14, Level::kError)), static_cast<int>(Level::kError));

  auto sink = std::make_shared<CaptureSink>();
  Logger logger(Level::kInfo, sink);
  SetAccessLevel(Level::kDebug);
  LogFinishedCall(Call(0, std::chrono::milliseconds(1)), logger);
  expect_that(sink->lines.empty(), "access_log_level debug under level info: successful calls are not logged");
  LogFinishedCall(Call(13, std::chrono::milliseconds(1)), logger);
  expect_that(sink->lines.size() == 1 && sink->levels[0] == Level::kError, "an Internal is logged as an error");
  SetAccessLevel(std::nullopt);
  LogFinishedCall(Call(13, std::chrono::milliseconds(1)), logger);
  expect_that(sink->lines.size() == 1, "access_log_level off: nothing");
  SetAccessLevel(Level::kInfo);
}

static void test_health_checks_only_when_failing(void**) {
  SetAccessLevel(Level::kInfo);
  auto sink = std::make_shared<CaptureSink>();
  Logger logger(Level::kInfo, sink);
  FinishedCall call = Call(0, std::chrono::milliseconds(1));
  call.full_method = "/grpc.health.v1.Health/Check";
  LogFinishedCall(call, logger);
  expect_that(sink->lines.empty(), "a successful health check is not logged (Gitaly's default deny pattern)");
  call.code = 5;
  LogFinishedCall(call, logger);
  expect_that(sink->lines.size() == 1, "a failing health check is");
}

static void test_time_ms_like_go(void**) {
  FinishedCall call = Call(0, std::chrono::nanoseconds(999));
  auto find = [](const Fields& fields) {
    for (const Field& f : fields)
      if (f.key == "grpc.time_ms") return f.value;
    return std::string("missing");
  };
  assert_string_equal(find(AccessFields(call)).c_str(), "0");
  call.duration = std::chrono::milliseconds(12);
  assert_string_equal(find(AccessFields(call)).c_str(), "12");
  call.duration = std::chrono::microseconds(1500500);
  assert_string_equal(find(AccessFields(call)).c_str(), "1500.5");
  call.duration = std::chrono::microseconds(7);
  assert_string_equal(find(AccessFields(call)).c_str(), "0.007");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_line_as_praefect_writes_it),
      cmocka_unit_test(test_failed_and_streaming_calls),
      cmocka_unit_test(test_levels),
      cmocka_unit_test(test_health_checks_only_when_failing),
      cmocka_unit_test(test_time_ms_like_go),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
