#include "common/quote.h"

#include <string>

#include "test_support.h"

using praefect::QuoteForMessage;

namespace {

void test_plain_text_is_quoted_as_is(void**) {
  assert_string_equal(QuoteForMessage("@hashed/ab/cd.git").c_str(), "\"@hashed/ab/cd.git\"");
  assert_string_equal(QuoteForMessage("").c_str(), "\"\"");
  assert_string_equal(QuoteForMessage("caf\xc3\xa9").c_str(), "\"caf\xc3\xa9\"");
}

void test_escapes(void**) {
  assert_string_equal(QuoteForMessage(std::string("a\0b", 3)).c_str(), "\"a\\x00b\"");
  assert_string_equal(QuoteForMessage("q\"b\\").c_str(), "\"q\\\"b\\\\\"");
  assert_string_equal(QuoteForMessage("n\nt\tr\r\x7f\x1b").c_str(), "\"n\\nt\\tr\\r\\x7f\\x1b\"");
  // Bytes that are not UTF-8: a lone continuation, a truncated sequence, an
  // overlong "/", a surrogate.
  assert_string_equal(QuoteForMessage("\x80|\xc3|\xc0\xaf|\xed\xa0\x80").c_str(),
                      "\"\\x80|\\xc3|\\xc0\\xaf|\\xed\\xa0\\x80\"");
}

void test_long_text_is_cut(void**) {
  std::string out = QuoteForMessage(std::string(3000, 'z'), 10);
  assert_string_equal(out.c_str(), "\"zzzzzzzzzz\"... (3000 bytes)");
  // Never inside a UTF-8 sequence: "é" is two bytes and does not fit.
  assert_string_equal(QuoteForMessage("abc\xc3\xa9", 4).c_str(), "\"abc\"... (5 bytes)");
  assert_string_equal(QuoteForMessage("abcd", 4).c_str(), "\"abcd\"");
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_text_is_quoted_as_is),
      cmocka_unit_test(test_escapes),
      cmocka_unit_test(test_long_text_is_cut),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
