#include "wire/field_scanner.h"

#include <string>

#include "test_support.h"

using praefect::StatusCode;
using praefect::wire::FieldScanner;
using praefect::wire::WireField;

static void test_reports_extents_of_each_wire_type(void**) {
  // varint 150 (field 1), fixed64 (field 2), length-delimited "hi" with a
  // non-minimal two-byte tag (field 3), fixed32 (field 100, two-byte tag).
  const std::string data(
      "\x08\x96\x01"
      "\x11\x01\x02\x03\x04\x05\x06\x07\x08"
      "\x9a\x00\x02hi"
      "\xa5\x06\x01\x02\x03\x04",
      23);
  FieldScanner scanner(data, 1000);
  WireField f;
  assert_status_ok(scanner.Next(&f));
  expect_that(f.number == 1 && f.wire_type == 0 && f.begin == 0 && f.value_begin == 1 && f.end == 3, "varint extent");
  assert_status_ok(scanner.Next(&f));
  expect_that(f.number == 2 && f.wire_type == 1 && f.begin == 3 && f.end == 12, "fixed64 extent");
  assert_status_ok(scanner.Next(&f));
  expect_that(f.number == 3 && f.wire_type == 2 && f.begin == 12 && f.value_begin == 14 && f.payload_begin == 15 &&
                  f.end == 17 && f.payload == "hi" && f.tag_bytes == std::string("\x9a\x00", 2),
              "length-delimited extent, with the tag as spelled");
  assert_status_ok(scanner.Next(&f));
  expect_that(f.number == 100 && f.wire_type == 5 && f.begin == 17 && f.value_begin == 19 && f.end == 23,
              "fixed32 extent with a two-byte tag");
  expect_that(scanner.AtEnd(), "the scanner to be at the end");
}

static void test_errors_use_absolute_offsets(void**) {
  FieldScanner scanner(std::string_view("\x08\x01\x0a\x07", 4), 40);
  WireField f;
  assert_status_ok(scanner.Next(&f));
  const praefect::Status st = scanner.Next(&f);
  expect_that(st.code() == StatusCode::kInvalidArgument, "INVALID_ARGUMENT");
  expect_that(st.message() ==
                  "malformed protobuf message: field 1 declares 7 bytes but only 0 remain in its enclosing message "
                  "at byte offset 43",
              "the exact message, got: " + st.message());
}

static void test_largest_field_number_and_five_byte_tag(void**) {
  // Field 2^29-1, wire type 0: the longest tag a parser accepts.
  FieldScanner scanner(std::string_view("\xf8\xff\xff\xff\x0f\x00", 6), 0);
  WireField f;
  assert_status_ok(scanner.Next(&f));
  expect_that(f.number == (1u << 29) - 1 && f.value_begin == 5 && f.end == 6, "a five-byte tag");
}

static void test_empty_input_is_at_end(void**) {
  FieldScanner scanner(std::string_view(), 0);
  expect_that(scanner.AtEnd(), "empty input to be at its end");
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_reports_extents_of_each_wire_type),
      cmocka_unit_test(test_errors_use_absolute_offsets),
      cmocka_unit_test(test_largest_field_number_and_five_byte_tag),
      cmocka_unit_test(test_empty_input_is_at_end),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
