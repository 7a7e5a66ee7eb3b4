#include "log/log.h"
#include "test_support.h"

#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

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
    lines.push_back(StreamSink::FormatEntry(e, Format::kText));
  }
  std::mutex mu;
  std::vector<std::string> lines;
};

}  // namespace

static void test_text_format_like_logrus(void**) {
  Fields fields{{"virtual_storage", "default"}, {"grpc.method", "/gitaly.RepositoryService/RepositoryExists"},
                {"attempt", 3}, {"error", "connection refused"}, {"empty", ""}};
  std::string line = StreamSink::FormatEntry(Entry{FixedTime(), Level::kWarn, "node unhealthy", fields},
                                             Format::kText);
  assert_string_equal(line.c_str(),
                      "time=\"2026-11-22T03:14:29.123Z\" level=warning msg=\"node unhealthy\" attempt=3 "
                      "empty=\"\" error=\"connection refused\" grpc.method=/gitaly.RepositoryService/"
                      "RepositoryExists virtual_storage=default\n");
}

static void test_text_quotes_like_go(void**) {
  // %q as logrus writes it: <, > and & stay as they are (unlike JSON), control
  // characters are escaped.
  Fields fields{{"error", "rpc <x> & \"y\"\nnext"}, {"bell", "\x07"}};
  std::string line = StreamSink::FormatEntry(Entry{FixedTime(), Level::kError, "m", fields}, Format::kText);
  assert_string_equal(line.c_str(),
                      "time=\"2026-11-22T03:14:29.123Z\" level=error msg=m bell=\"\\x07\" "
                      "error=\"rpc <x> & \\\"y\\\"\\nnext\"\n");
}

static void test_json_format_sorted_and_typed(void**) {
  Fields fields{{"zeta", "z"}, {"count", 2}, {"ok", true}, {"quote", "a\"b"}};
  std::string line = StreamSink::FormatEntry(Entry{FixedTime(), Level::kInfo, "hello", fields}, Format::kJson);
  assert_string_equal(line.c_str(),
                      "{\"count\":2,\"level\":\"info\",\"msg\":\"hello\",\"ok\":true,\"quote\":\"a\\\"b\","
                      "\"time\":\"2026-11-22T03:14:29.123Z\",\"zeta\":\"z\"}\n");
}

static void test_json_reserved_keys_not_duplicated(void**) {
  Fields fields{{"msg", "spoof"}, {"level", "spoof"}};
  std::string line = StreamSink::FormatEntry(Entry{FixedTime(), Level::kError, "real", fields}, Format::kJson);
  assert_string_equal(line.c_str(), "{\"level\":\"error\",\"msg\":\"real\",\"time\":\"2026-11-22T03:14:29.123Z\"}\n");
}

static void test_level_filter_and_reload(void**) {
  auto sink = std::make_shared<CaptureSink>();
  Logger logger(Level::kInfo, sink);
  logger.Log(Level::kDebug, "hidden");
  logger.Log(Level::kInfo, "shown");
  assert_int_equal(sink->lines.size(), 1);
  logger.SetLevel(Level::kDebug);
  logger.Log(Level::kDebug, "now shown");
  assert_int_equal(sink->lines.size(), 2);
  assert_true(sink->lines[1].find("msg=\"now shown\"") != std::string::npos);
}

static void test_parse_level_and_format(void**) {
  assert_int_equal(static_cast<int>(*ParseLevel("")), static_cast<int>(Level::kInfo));
  assert_int_equal(static_cast<int>(*ParseLevel("WARNING")), static_cast<int>(Level::kWarn));
  assert_int_equal(static_cast<int>(*ParseLevel("panic")), static_cast<int>(Level::kFatal));
  auto bad = ParseLevel("verbose");
  assert_false(bad.ok());
  assert_true(bad.status().message().find("expected one of trace, debug") != std::string::npos);
  assert_int_equal(static_cast<int>(*ParseFormat("json")), static_cast<int>(Format::kJson));
  assert_false(ParseFormat("xml").ok());
}

static void test_concurrent_lines_do_not_interleave(void**) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  auto sink = std::make_shared<StreamSink>(fds[1], Format::kText);
  Logger logger(Level::kInfo, sink);
  constexpr int kThreads = 4, kLines = 50;
  std::string collected;
  std::thread reader([&] {
    char buf[4096];
    ssize_t n;
    while ((n = read(fds[0], buf, sizeof buf)) > 0) collected.append(buf, static_cast<size_t>(n));
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i) logger.Log(Level::kInfo, "line", {{"thread", t}, {"i", i}});
    });
  }
  for (auto& w : writers) w.join();
  close(fds[1]);
  reader.join();
  close(fds[0]);
  int count = 0;
  size_t pos = 0;
  while (pos < collected.size()) {
    size_t nl = collected.find('\n', pos);
    assert_true(nl != std::string::npos);
    std::string l = collected.substr(pos, nl - pos);
    assert_true(l.rfind("time=\"", 0) == 0);
    assert_true(l.find("msg=line i=") != std::string::npos);
    ++count;
    pos = nl + 1;
  }
  assert_int_equal(count, kThreads * kLines);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_format_like_logrus),
      cmocka_unit_test(test_text_quotes_like_go),
      cmocka_unit_test(test_json_format_sorted_and_typed),
      cmocka_unit_test(test_json_reserved_keys_not_duplicated),
      cmocka_unit_test(test_level_filter_and_reload),
      cmocka_unit_test(test_parse_level_and_format),
      cmocka_unit_test(test_concurrent_lines_do_not_interleave),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
