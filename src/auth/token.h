#pragma once

#include <array>
#include <chrono>
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

// SHA-256 of `data` (for identifiers derived from names; not a MAC).
std::array<unsigned char, 32> Sha256(std::string_view data);

}  // namespace praefect::auth
