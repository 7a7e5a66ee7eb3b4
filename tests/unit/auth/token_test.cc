#include "auth/token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>
#include <limits>
#include <string>
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

// A correctly signed token for the timestamp text `ts`, computed here with
// OpenSSL directly: system_clock cannot represent the extreme timestamps
// (its nanosecond ticks span about ±292 years), so SignV2 cannot make them.
std::string SignedAt(const std::string& secret, const std::string& ts) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(ts.data()), ts.size(), mac, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    static constexpr char kHex[] = "0123456789abcdef";
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xF];
  }
  return "Bearer v2." + hex + "." + ts;
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

// A captured token must never become valid forever: timestamps at the ends
// of int64 are as stale as any other (the skew once overflowed for -2^63 and
// such a token passed as fresh).
static void test_extreme_timestamps_denied(void**) {
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  const int64_t kMax = std::numeric_limits<int64_t>::max();
  for (int64_t ts : {kMin, kMin + 1, int64_t{-1}, int64_t{0}, kMax - 1, kMax}) {
    std::string header = SignedAt("secret", std::to_string(ts));
    ExpectCode(VerifyV2(header, "secret", kNow), StatusCode::kPermissionDenied, "away from this server's clock");
  }
  // The signing helper agrees with SignV2 where both can sign.
  assert_string_equal(SignedAt("secret", "1795317269").c_str(), BearerV2("secret", kNow).c_str());
  // One past int64 is not a timestamp at all.
  ExpectCode(VerifyV2("Bearer v2.abc.9223372036854775808", "secret", kNow), StatusCode::kUnauthenticated,
             "decimal");
  ExpectCode(VerifyV2("Bearer v2.abc.-9223372036854775809", "secret", kNow), StatusCode::kUnauthenticated,
             "decimal");
}

// The edges of the window, one second either side.
static void test_window_edges(void**) {
  for (int64_t d : {-31, 31}) {
    std::string header = BearerV2("secret", kNow + std::chrono::seconds(d));
    ExpectCode(VerifyV2(header, "secret", kNow), StatusCode::kPermissionDenied, "31s away");
  }
  for (int64_t d : {-30, -1, 0, 1, 30}) {
    assert_status_ok(VerifyV2(BearerV2("secret", kNow + std::chrono::seconds(d)), "secret", kNow));
  }
}

// SigningKey remembers signatures per timestamp; its answers must be those
// of the free functions in every case, cached or not.
static void test_signing_key_agrees(void**) {
  praefect::auth::SigningKey key("secret");
  praefect::auth::SigningKey other("other secret");
  assert_string_equal(key.SignV2(kNow).c_str(), SignV2("secret", kNow).c_str());
  assert_string_equal(key.SignV2(kNow).c_str(), SignV2("secret", kNow).c_str());  // cached now
  assert_string_equal(key.BearerV2(kNow + 1s).c_str(), BearerV2("secret", kNow + 1s).c_str());
  // Timestamps 128 s apart share a slot: each gets its own signature.
  assert_string_equal(key.SignV2(kNow + 128s).c_str(), SignV2("secret", kNow + 128s).c_str());
  assert_string_equal(key.SignV2(kNow).c_str(), SignV2("secret", kNow).c_str());
  for (int64_t d : {-40, -31, -30, -1, 0, 1, 30, 31, 40, 128}) {
    const auto at = kNow + std::chrono::seconds(d);
    for (const std::string& header : {BearerV2("secret", at), BearerV2("other secret", at), BearerV2("secret", at)}) {
      Status want = VerifyV2(header, "secret", kNow);
      Status got = key.VerifyV2(header, kNow);
      if (got.code() != want.code() || got.message() != want.message())
        fail_msg("d=%lld: key says %s, VerifyV2 %s", static_cast<long long>(d), got.ToString().c_str(),
                 want.ToString().c_str());
    }
  }
  // A cached timestamp does not make a wrong signature pass.
  std::string good = BearerV2("secret", kNow);
  assert_status_ok(key.VerifyV2(good, kNow));
  std::string bad = good;
  bad[12] = bad[12] == 'a' ? 'b' : 'a';
  ExpectCode(key.VerifyV2(bad, kNow), StatusCode::kPermissionDenied, "signature does not match");
  // Another key's cache is its own.
  ExpectCode(other.VerifyV2(good, kNow), StatusCode::kPermissionDenied, "signature does not match");
  // A timestamp that is not the canonical text of its value ("0" padded) is
  // checked as VerifyV2 checks it, and does not poison the cache.
  const std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kNow.time_since_epoch()).count());
  std::string padded = SignedAt("secret", "0" + ts);
  Status want = VerifyV2(padded, "secret", kNow);
  Status got = key.VerifyV2(padded, kNow);
  assert_int_equal(static_cast<int>(got.code()), static_cast<int>(want.code()));
  assert_string_equal(key.SignV2(kNow).c_str(), SignV2("secret", kNow).c_str());
  assert_status_ok(key.VerifyV2(good, kNow));
  // The empty secret signs as the free function does.
  praefect::auth::SigningKey none("");
  assert_true(none.empty());
  assert_string_equal(none.SignV2(kNow).c_str(), SignV2("", kNow).c_str());
}

// Many threads signing and verifying through one key (the data plane's
// loops and the work pool): run under the sanitizers.
static void test_signing_key_threads(void**) {
  praefect::auth::SigningKey key("secret");
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const auto at = kNow + std::chrono::seconds((i * 7 + t) % 300 - 150);
        if (key.SignV2(at) != SignV2("secret", at)) failures++;
        const bool fresh = std::chrono::abs(at - kNow) <= 30s;
        if (key.VerifyV2(BearerV2("secret", at), kNow).ok() != fresh) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  assert_int_equal(failures.load(), 0);
}

// Gitaly's gitaly_authentication_errors_total labels of each refusal.
static void test_v2_error_labels(void**) {
  using praefect::auth::V2ErrorLabel;
  auto label = [](const std::string& header, std::chrono::system_clock::time_point now) {
    return std::string(V2ErrorLabel(header, VerifyV2(header, "secret", now), now));
  };
  std::string good = BearerV2("secret", kNow);
  expect_that(label(good, kNow).empty(), "no label for an accepted token");
  expect_that(label(BearerV2("other", kNow), kNow) == "wrong hmac signature", label(BearerV2("other", kNow), kNow));
  expect_that(label(good, kNow + 31s) == "timestamp too old", label(good, kNow + 31s));
  expect_that(label(good, kNow - 31s) == "timestamp too new", label(good, kNow - 31s));
  expect_that(label("Bearer v2.abcd.yesterday", kNow) == "cannot parse timestamp", "unparsable timestamp");
  expect_that(label("", kNow).empty() && label("Bearer secret", kNow).empty(),
              "no label for a missing or malformed token (Gitaly counts those as unauthenticated only)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_known_answer),
      cmocka_unit_test(test_accepts_within_window),
      cmocka_unit_test(test_stale_and_future_denied),
      cmocka_unit_test(test_wrong_secret_denied),
      cmocka_unit_test(test_missing_or_malformed_unauthenticated),
      cmocka_unit_test(test_messages_never_echo_secrets),
      cmocka_unit_test(test_extreme_timestamps_denied),
      cmocka_unit_test(test_window_edges),
      cmocka_unit_test(test_signing_key_agrees),
      cmocka_unit_test(test_signing_key_threads),
      cmocka_unit_test(test_v2_error_labels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
