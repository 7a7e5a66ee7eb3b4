// Fuzzes v2 token verification with arbitrary authorization metadata: no
// crash, no over-read, and only the token signed for the verifier's secret
// and clock is accepted.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "auth/token.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace std::chrono_literals;
  const std::chrono::system_clock::time_point now{1795317269s};
  std::string_view header(reinterpret_cast<const char*>(data), size);
  praefect::Status st = praefect::auth::VerifyV2(header, "secret", now);
  if (st.ok()) {
    // Any accepted token must be one SignV2 produces within the window.
    bool found = false;
    for (int skew = -30; skew <= 30 && !found; ++skew) {
      found = header == praefect::auth::BearerV2("secret", now + std::chrono::seconds(skew));
    }
    if (!found) std::abort();
  } else if (st.code() != praefect::StatusCode::kUnauthenticated &&
             st.code() != praefect::StatusCode::kPermissionDenied) {
    std::abort();
  }
  return 0;
}
