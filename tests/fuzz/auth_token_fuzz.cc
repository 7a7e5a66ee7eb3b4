// Fuzzes v2 token verification. The first byte picks the mode:
//  * even: the rest is the whole authorization metadata. No crash, no
//    over-read, and only a token signed for the verifier's secret and clock
//    is accepted.
//  * odd: the rest is a timestamp text, signed correctly here, so that the
//    fuzzer reaches the clock arithmetic with any text (a wrong MAC stops
//    the first mode short of it). Accepted exactly when the text is a
//    decimal int64 within 30 s of the verifier's clock, computed here in
//    128-bit arithmetic that cannot overflow.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/token.h"

namespace {

std::string SignedAt(std::string_view secret, std::string_view ts) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(ts.data()),
       ts.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "Bearer v2.";
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xF];
  }
  return out + "." + std::string(ts);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace std::chrono_literals;
  if (size == 0) return 0;
  const int64_t now_seconds = 1795317269;
  const std::chrono::system_clock::time_point now{std::chrono::seconds(now_seconds)};
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    praefect::Status st = praefect::auth::VerifyV2(rest, "secret", now);
    if (st.ok()) {
      // Any accepted token must be one SignV2 produces within the window.
      bool found = false;
      for (int skew = -30; skew <= 30 && !found; ++skew) {
        found = rest == praefect::auth::BearerV2("secret", now + std::chrono::seconds(skew));
      }
      if (!found) std::abort();
    } else if (st.code() != praefect::StatusCode::kUnauthenticated &&
               st.code() != praefect::StatusCode::kPermissionDenied) {
      std::abort();
    }
    return 0;
  }
  if (rest.find('.') != std::string_view::npos) return 0;  // Not a timestamp: the token's own separator.
  praefect::Status st = praefect::auth::VerifyV2(SignedAt("secret", rest), "secret", now);
  int64_t ts = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), ts);
  const bool decimal = !rest.empty() && ec == std::errc() && end == rest.data() + rest.size();
  if (!decimal) {
    if (st.code() != praefect::StatusCode::kUnauthenticated) std::abort();
    return 0;
  }
  const __int128 skew = static_cast<__int128>(ts) - now_seconds;
  const bool fresh = skew >= -30 && skew <= 30;
  if (fresh != st.ok()) std::abort();
  if (!fresh && st.code() != praefect::StatusCode::kPermissionDenied) std::abort();
  return 0;
}
