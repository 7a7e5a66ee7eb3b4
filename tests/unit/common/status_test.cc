#include "common/status.h"
#include "common/status_or.h"
#include "test_support.h"

#include <memory>

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;

static void test_codes_match_grpc(void**) {
  // The numeric values are gRPC's: a Status goes back to a client as is.
  assert_int_equal(static_cast<int>(StatusCode::kInvalidArgument), 3);
  assert_int_equal(static_cast<int>(StatusCode::kUnimplemented), 12);
  assert_int_equal(static_cast<int>(StatusCode::kUnavailable), 14);
  assert_int_equal(static_cast<int>(StatusCode::kUnauthenticated), 16);
}

static void test_to_string(void**) {
  assert_string_equal(Status::Ok().ToString().c_str(), "OK");
  Status st = praefect::InvalidArgument("virtual storage \"x\" is not configured");
  assert_false(st.ok());
  assert_string_equal(st.ToString().c_str(), "INVALID_ARGUMENT: virtual storage \"x\" is not configured");
}

static void test_status_or_value_and_error(void**) {
  StatusOr<int> v = 42;
  assert_true(v.ok());
  assert_int_equal(*v, 42);
  assert_true(v.status().ok());

  StatusOr<int> e = praefect::NotFound("gone");
  assert_false(e.ok());
  assert_int_equal(static_cast<int>(e.status().code()), static_cast<int>(StatusCode::kNotFound));
  assert_string_equal(e.status().message().c_str(), "gone");
}

static void test_status_or_move_only(void**) {
  StatusOr<std::unique_ptr<int>> p = std::make_unique<int>(7);
  assert_true(p.ok());
  std::unique_ptr<int> owned = std::move(p).value();
  assert_int_equal(*owned, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codes_match_grpc),
      cmocka_unit_test(test_to_string),
      cmocka_unit_test(test_status_or_value_and_error),
      cmocka_unit_test(test_status_or_move_only),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
