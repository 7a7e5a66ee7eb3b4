#include "auth/token.h"
#include "test_support.h"

using namespace std::chrono_literals;
using praefect::Status;
using praefect::StatusCode;
using praefect::auth::BearerV2;
using praefect::auth::SignV2;
using praefect::auth::VerifyV2;

namespace {

const std::chrono::system_clock::time_point kNow{1795317269s};

void ExpectCode(const Status& st, StatusCode code, const char* fragment) {
  if (st.code() != code) {
    fail_msg("got %s, want code %d", st.ToString().c_str(), static_cast<int>(code));
  }
  if (st.message().find(fragment) == std::string::npos) {
    fail_msg("message \"%s\" does not mention \"%s\"", st.message().c_str(), fragment);
  }
}

}  // namespace

static void test_known_answer(void**) {
  // HMAC-SHA256("secret", "1795317269"), computed independently (Python's hmac).
  assert_string_equal(SignV2("secret", kNow).c_str(),
                      "v2.a82e1eac639a4d2fb93532de8b5fea37b76e9e338a5f07cb7f4889b71f846d19.1795317269");
  assert_string_equal(BearerV2("secret", kNow).substr(0, 10).c_str(), "Bearer v2.");
}

static void test_accepts_within_window(void**) {
  std::string header = BearerV2("secret", kNow);
  assert_status_ok(VerifyV2(header, "secret", kNow));
  assert_status_ok(VerifyV2(header, "secret", kNow + 30s));
  assert_status_ok(VerifyV2(header, "secret", kNow - 30s));
}

static void test_stale_and_future_denied(void**) {
  std::string header = BearerV2("secret", kNow);
  ExpectCode(VerifyV2(header, "secret", kNow + 31s), StatusCode::kPermissionDenied, "31s away");
  ExpectCode(VerifyV2(header, "secret", kNow - 31s), StatusCode::kPermissionDenied, "check the clocks");
}

static void test_wrong_secret_denied(void**) {
  ExpectCode(VerifyV2(BearerV2("other", kNow), "secret", kNow), StatusCode::kPermissionDenied,
             "signature does not match");
  // A truncated or altered signature is denied as well.
  std::string header = BearerV2("secret", kNow);
  std::string altered = header;
  altered[12] = altered[12] == 'a' ? 'b' : 'a';
  ExpectCode(VerifyV2(altered, "secret", kNow), StatusCode::kPermissionDenied, "signature");
  std::string shorter = header;
  shorter.erase(12, 2);
  ExpectCode(VerifyV2(shorter, "secret", kNow), StatusCode::kPermissionDenied, "signature");
}

static void test_missing_or_malformed_unauthenticated(void**) {
  ExpectCode(VerifyV2("", "secret", kNow), StatusCode::kUnauthenticated, "no authorization");
  ExpectCode(VerifyV2("secret", "secret", kNow), StatusCode::kUnauthenticated, "Bearer");
  ExpectCode(VerifyV2("Bearer secret", "secret", kNow), StatusCode::kUnauthenticated, "v2.<hmac>.<timestamp>");
  ExpectCode(VerifyV2("Bearer v1.abc.1795317269", "secret", kNow), StatusCode::kUnauthenticated,
             "only v2 tokens");
  ExpectCode(VerifyV2("Bearer v2.abc.17953x", "secret", kNow), StatusCode::kUnauthenticated, "decimal");
  ExpectCode(VerifyV2("Bearer v2.abc.", "secret", kNow), StatusCode::kUnauthenticated, "decimal");
  ExpectCode(VerifyV2("Bearer v2.abc.99999999999999999999999", "secret", kNow), StatusCode::kUnauthenticated,
             "decimal");
}

static void test_messages_never_echo_secrets(void**) {
  std::string header = BearerV2("hunter2", kNow);
  Status st = VerifyV2(header, "s3cr3t-value", kNow);
  assert_true(st.message().find("hunter2") == std::string::npos);
  assert_true(st.message().find("s3cr3t-value") == std::string::npos);
  assert_true(st.message().find(header.substr(10, 20)) == std::string::npos);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_answer),
      cmocka_unit_test(test_accepts_within_window),
      cmocka_unit_test(test_stale_and_future_denied),
      cmocka_unit_test(test_wrong_secret_denied),
      cmocka_unit_test(test_missing_or_malformed_unauthenticated),
      cmocka_unit_test(test_messages_never_echo_secrets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
