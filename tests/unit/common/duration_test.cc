#include "common/duration.h"
#include "test_support.h"

#include <chrono>

using namespace std::chrono_literals;
using praefect::Duration;
using praefect::FormatGoDuration;
using praefect::ParseGoDuration;

namespace {

void ExpectParses(const char* text, Duration want) {
  auto got = ParseGoDuration(text);
  if (!got.ok()) fail_msg("ParseGoDuration(\"%s\") failed: %s", text, got.status().ToString().c_str());
  if (*got != want) {
    fail_msg("ParseGoDuration(\"%s\") = %lld ns, want %lld ns", text, static_cast<long long>(got->count()),
             static_cast<long long>(want.count()));
  }
}

void ExpectRejects(const char* text, const char* fragment) {
  auto got = ParseGoDuration(text);
  if (got.ok()) fail_msg("ParseGoDuration(\"%s\") accepted it, want an error", text);
  const praefect::Status st = got.status();
  const std::string& msg = st.message();
  if (msg.find(fragment) == std::string::npos) {
    fail_msg("error for \"%s\" is \"%s\", want it to mention \"%s\"", text, msg.c_str(), fragment);
  }
  // Every message shows the accepted syntax so the operator can fix the file.
  expect_that(msg.find("1m30s") != std::string::npos, "the message to show an example");
}

}  // namespace

static void test_go_syntax(void**) {
  ExpectParses("0", 0s);
  ExpectParses("5m", 5min);
  ExpectParses("72h", 72h);
  ExpectParses("1m30s", 90s);
  ExpectParses("1.5h", 90min);
  ExpectParses(".5s", 500ms);
  ExpectParses("1h2m3s4ms5us6ns", 1h + 2min + 3s + 4ms + 5us + 6ns);
  ExpectParses("2\xC2\xB5s", 2us);  // µs, micro sign
  ExpectParses("2\xCE\xBCs", 2us);  // μs, Greek mu
  ExpectParses("-1.5s", -1500ms);
  ExpectParses("+10s", 10s);
  ExpectParses("168h", 168h);
  ExpectParses("0s", 0s);
}

static void test_rejects_bad_input(void**) {
  ExpectRejects("", "empty");
  ExpectRejects("5", "unit is missing");
  ExpectRejects("10 s", "unknown unit");
  ExpectRejects("3d", "unknown unit \"d\"");
  ExpectRejects("s", "number is missing");
  ExpectRejects(".s", "number is missing");
  ExpectRejects("-", "empty");
  ExpectRejects("9999999999999999999h", "too large");
  ExpectRejects("3000000h", "too large");
}

static void test_format_like_go(void**) {
  assert_string_equal(FormatGoDuration(0s).c_str(), "0s");
  assert_string_equal(FormatGoDuration(1min).c_str(), "1m0s");
  assert_string_equal(FormatGoDuration(90s).c_str(), "1m30s");
  assert_string_equal(FormatGoDuration(168h).c_str(), "168h0m0s");
  assert_string_equal(FormatGoDuration(1500ms).c_str(), "1.5s");
  assert_string_equal(FormatGoDuration(250ms).c_str(), "250ms");
  assert_string_equal(FormatGoDuration(-2s).c_str(), "-2s");
  assert_string_equal(FormatGoDuration(7ns).c_str(), "7ns");
}

static void test_round_trip(void**) {
  for (Duration d : {Duration(1), Duration(999), Duration(1234567), Duration(5min), Duration(72h + 3s + 1ms)}) {
    auto back = ParseGoDuration(FormatGoDuration(d));
    assert_true(back.ok());
    assert_int_equal(back->count(), d.count());
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_go_syntax),
      cmocka_unit_test(test_rejects_bad_input),
      cmocka_unit_test(test_format_like_go),
      cmocka_unit_test(test_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
