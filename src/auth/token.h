#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/status.h"

namespace praefect::auth {

// Gitaly's v2 authentication tokens (ARCHITECTURE.md §2). A client sends the
// gRPC metadata `authorization: Bearer v2.<hex HMAC-SHA256(secret, ts)>.<ts>`
// where ts is the Unix time in seconds as decimal text; a token is valid for
// kTokenValidity either side of the verifier's clock.

inline constexpr std::chrono::seconds kTokenValidity{30};
inline constexpr std::string_view kAuthorizationMetadataKey = "authorization";

// The token for `secret` at `now`, without "Bearer ": "v2.<hex>.<ts>".
std::string SignV2(std::string_view secret, std::chrono::system_clock::time_point now);

// The full metadata value: "Bearer v2.<hex>.<ts>".
std::string BearerV2(std::string_view secret, std::chrono::system_clock::time_point now);

// Checks an `authorization` metadata value against `secret` at `now`, as
// Gitaly does: missing or malformed → UNAUTHENTICATED; a wrong signature or a
// timestamp more than kTokenValidity away from `now` → PERMISSION_DENIED.
// The signature is compared in constant time. Messages never contain the
// token or the secret.
[[nodiscard]] Status VerifyV2(std::string_view authorization, std::string_view secret,
                              std::chrono::system_clock::time_point now);

// Gitaly's gitaly_authentication_errors_total{version="v2",error} label of
// a VerifyV2 failure on `authorization` at `now`: "cannot parse timestamp",
// "timestamp too old", "timestamp too new" or "wrong hmac signature"; ""
// for failures Gitaly does not count there (no token, not a v2 token).
std::string_view V2ErrorLabel(std::string_view authorization, const Status& failure,
                              std::chrono::system_clock::time_point now);

// A secret that signs and verifies v2 tokens, remembering the signature of
// each recent timestamp: every call within a second is signed with, and
// every client's token within a second carries, the same timestamp, so one
// HMAC serves them all (an HMAC is ~20k instructions, most of a proxied
// call's cost otherwise). Results are those of SignV2, BearerV2 and
// VerifyV2 with the same secret. Thread-safe; immutable but for the cache.
class SigningKey {
 public:
  explicit SigningKey(std::string secret);
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  const std::string& secret() const { return secret_; }
  bool empty() const { return secret_.empty(); }

  std::string SignV2(std::chrono::system_clock::time_point now) const;
  std::string BearerV2(std::chrono::system_clock::time_point now) const;
  [[nodiscard]] Status VerifyV2(std::string_view authorization, std::chrono::system_clock::time_point now) const;

 private:
  // Lower-case hex HMAC of the decimal timestamp `ts`; cached when `cache`.
  std::string Mac(int64_t seconds, std::string_view ts, bool cache) const;

  struct Slot {
    int64_t seconds = 0;
    bool set = false;
    std::array<char, 64> hex{};
  };
  const std::string secret_;
  mutable std::mutex mu_;
  // Indexed by seconds modulo the size: tokens within kTokenValidity of now
  // and the current second of signing never evict each other.
  mutable std::array<Slot, 128> slots_;  // GUARDED_BY(mu_)
};

// SHA-256 of `data` (for identifiers derived from names; not a MAC).
std::array<unsigned char, 32> Sha256(std::string_view data);

}  // namespace praefect::auth
