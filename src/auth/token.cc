#include "auth/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <algorithm>

namespace praefect::auth {
namespace {

constexpr std::string_view kBearerPrefix = "Bearer ";
constexpr std::string_view kVersion = "v2";

// Lower-case hex of HMAC-SHA256(secret, message).
std::string HmacHex(std::string_view secret, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xF];
  }
  return out;
}

// |a - b| without overflow: any two int64 values are at most 2^64 - 1 apart,
// which a uint64 holds (a token timestamp of -2^63 must not wrap to a small
// skew and pass as fresh).
uint64_t Distance(int64_t a, int64_t b) {
  return a > b ? static_cast<uint64_t>(a) - static_cast<uint64_t>(b) : static_cast<uint64_t>(b) - static_cast<uint64_t>(a);
}

Status Unauthenticated(std::string why) {
  return Status(StatusCode::kUnauthenticated, "authentication required: " + std::move(why));
}

Status Denied(std::string why) { return Status(StatusCode::kPermissionDenied, "permission denied: " + std::move(why)); }

}  // namespace

std::string SignV2(std::string_view secret, std::chrono::system_clock::time_point now) {
  std::string ts = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count());
  std::string token(kVersion);
  token += '.';
  token += HmacHex(secret, ts);
  token += '.';
  token += ts;
  return token;
}

std::string BearerV2(std::string_view secret, std::chrono::system_clock::time_point now) {
  return std::string(kBearerPrefix) + SignV2(secret, now);
}

namespace {

// VerifyV2 with the expected signature of a timestamp from `mac_of(seconds,
// ts, fresh)`, `fresh` when the timestamp is within kTokenValidity of now.
template <typename MacOf>
Status Verify(std::string_view authorization, std::chrono::system_clock::time_point now, const MacOf& mac_of) {
  if (authorization.empty()) return Unauthenticated("no authorization metadata; send a v2 token");
  if (!authorization.starts_with(kBearerPrefix)) {
    return Unauthenticated("authorization metadata is not of the form \"Bearer v2.<hmac>.<timestamp>\"");
  }
  std::string_view token = authorization.substr(kBearerPrefix.size());
  size_t first = token.find('.');
  size_t last = token.rfind('.');
  if (first == std::string_view::npos || first == last) {
    return Unauthenticated("token is not of the form v2.<hmac>.<timestamp>");
  }
  std::string_view version = token.substr(0, first);
  std::string_view mac = token.substr(first + 1, last - first - 1);
  std::string_view ts = token.substr(last + 1);
  if (version != kVersion) {
    return Unauthenticated("token version \"" + std::string(version.substr(0, 8)) +
                           "\" is not supported; only v2 tokens are accepted");
  }
  int64_t seconds = 0;
  auto [end, ec] = std::from_chars(ts.data(), ts.data() + ts.size(), seconds);
  if (ts.empty() || ec != std::errc() || end != ts.data() + ts.size()) {
    return Unauthenticated("token timestamp is not a decimal Unix time");
  }
  int64_t now_seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  uint64_t skew = Distance(now_seconds, seconds);
  const bool fresh = skew <= static_cast<uint64_t>(kTokenValidity.count());
  // Both checks run, so a stale token with a wrong signature is told apart
  // from neither by timing; the order of the messages does not leak the MAC.
  std::string want = mac_of(seconds, ts, fresh);
  bool mac_ok = mac.size() == want.size() && CRYPTO_memcmp(mac.data(), want.data(), want.size()) == 0;
  if (!fresh) {
    return Denied("token timestamp is " + std::to_string(skew) +
                  "s away from this server's clock (at most " + std::to_string(kTokenValidity.count()) +
                  "s allowed); check the clocks of client and server");
  }
  if (!mac_ok) return Denied("token signature does not match; check that client and server share the same token");
  return Status::Ok();
}

}  // namespace

std::string_view V2ErrorLabel(std::string_view authorization, const Status& failure,
                              std::chrono::system_clock::time_point now) {
  if (failure.ok()) return "";
  // By the messages above (after Unauthenticated's and Denied's prefixes).
  const std::string& m = failure.message();
  if (m.find("token timestamp is not") != std::string::npos) return "cannot parse timestamp";
  if (m.find("token signature does not match") != std::string::npos) return "wrong hmac signature";
  if (m.find("token timestamp is ") != std::string::npos) {
    std::string_view ts = authorization.substr(authorization.rfind('.') + 1);
    int64_t seconds = 0;
    std::from_chars(ts.data(), ts.data() + ts.size(), seconds);
    int64_t now_seconds = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    return seconds < now_seconds ? "timestamp too old" : "timestamp too new";
  }
  return "";
}

namespace {

int64_t Seconds(std::chrono::system_clock::time_point now) {
  return std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
}

}  // namespace

Status VerifyV2(std::string_view authorization, std::string_view secret, std::chrono::system_clock::time_point now) {
  return Verify(authorization, now,
                [secret](int64_t, std::string_view ts, bool) { return HmacHex(secret, ts); });
}

SigningKey::SigningKey(std::string secret) : secret_(std::move(secret)) {}

std::string SigningKey::Mac(int64_t seconds, std::string_view ts, bool cache) const {
  // The slot of a timestamp is fixed; a cached signature is only ever that
  // of the decimal text of `seconds` (from_chars accepts no sign, spaces or
  // leading "+"; "007" is not the text of 7 and is not cached).
  const bool canonical = ts == std::to_string(seconds);
  Slot& slot = slots_[static_cast<uint64_t>(seconds) % slots_.size()];
  if (cache && canonical) {
    std::lock_guard lock(mu_);
    if (slot.set && slot.seconds == seconds) return std::string(slot.hex.data(), slot.hex.size());
  }
  std::string hex = HmacHex(secret_, ts);
  if (cache && canonical && hex.size() == slot.hex.size()) {
    std::lock_guard lock(mu_);
    slot.seconds = seconds;
    slot.set = true;
    std::copy(hex.begin(), hex.end(), slot.hex.begin());
  }
  return hex;
}

std::string SigningKey::SignV2(std::chrono::system_clock::time_point now) const {
  const int64_t seconds = Seconds(now);
  const std::string ts = std::to_string(seconds);
  std::string token(kVersion);
  token += '.';
  token += Mac(seconds, ts, true);
  token += '.';
  token += ts;
  return token;
}

std::string SigningKey::BearerV2(std::chrono::system_clock::time_point now) const {
  return std::string(kBearerPrefix) + SignV2(now);
}

Status SigningKey::VerifyV2(std::string_view authorization, std::chrono::system_clock::time_point now) const {
  return Verify(authorization, now,
                [this](int64_t seconds, std::string_view ts, bool fresh) { return Mac(seconds, ts, fresh); });
}

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

}  // namespace praefect::auth
