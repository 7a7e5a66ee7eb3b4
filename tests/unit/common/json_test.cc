#include "common/json.h"
#include "test_support.h"

namespace {

std::string Json(std::string_view s) {
  std::string out;
  praefect::AppendJsonString(out, s);
  return out;
}

}  // namespace

static void test_plain_and_escapes(void**) {
  assert_string_equal(Json("abc").c_str(), "\"abc\"");
  assert_string_equal(Json("a\"b\\c").c_str(), "\"a\\\"b\\\\c\"");
  assert_string_equal(Json("l1\nl2\tx\r").c_str(), "\"l1\\nl2\\tx\\r\"");
  assert_string_equal(Json(std::string_view("\x01\x1f", 2)).c_str(), "\"\\u0001\\u001f\"");
  assert_string_equal(Json(std::string_view("a\0b", 3)).c_str(), "\"a\\u0000b\"");
}

static void test_utf8_kept_invalid_replaced(void**) {
  assert_string_equal(Json("gr\xC3\xBC\xC3\x9F").c_str(), "\"gr\xC3\xBC\xC3\x9F\"");
  assert_string_equal(Json("\xF0\x9F\x98\x80").c_str(), "\"\xF0\x9F\x98\x80\"");
  // A lone continuation byte, a truncated sequence, an overlong encoding and a
  // surrogate all become U+FFFD.
  assert_string_equal(Json("\x80").c_str(), "\"\\ufffd\"");
  assert_string_equal(Json("x\xC3").c_str(), "\"x\\ufffd\"");
  assert_string_equal(Json("\xC0\xAF").c_str(), "\"\\ufffd\\ufffd\"");
  assert_string_equal(Json("\xED\xA0\x80").c_str(), "\"\\ufffd\\ufffd\\ufffd\"");
}

static void test_html_and_line_separators_as_go(void**) {
  assert_string_equal(Json("<a>&").c_str(), "\"\\u003ca\\u003e\\u0026\"");
  assert_string_equal(Json("\xE2\x80\xA8").c_str(), "\"\\u2028\"");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_and_escapes),
      cmocka_unit_test(test_utf8_kept_invalid_replaced),
      cmocka_unit_test(test_html_and_line_separators_as_go),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
