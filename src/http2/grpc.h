#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http2/session.h"

// gRPC over HTTP/2, as much as a proxy needs: the 5-byte message prefix,
// the grpc-timeout header, and the status in trailers (gRPC's
// PROTOCOL-HTTP2.md). Pure functions and a small state machine; no I/O.
namespace praefect::http2::rpc {

inline constexpr size_t kPrefixSize = 5;

// Walks a stream of gRPC messages as its bytes come, in any pieces, to know
// where each message starts and how long it is, without holding the bytes.
class MessageScanner {
 public:
  // What Feed found in the bytes it was given.
  struct Result {
    size_t messages_started = 0;  // prefixes completed
    size_t messages_ended = 0;    // messages whose last byte was seen
    // The first prefix that announced more than the limit (its length).
    std::optional<uint64_t> oversized;
    bool compressed = false;      // some message had the compressed flag
  };

  // REQUIRES: max_message_bytes >= 0.
  explicit MessageScanner(uint64_t max_message_bytes) : max_(max_message_bytes) {}

  Result Feed(std::string_view bytes);
  // Between messages (no partial prefix or payload pending).
  bool at_boundary() const { return prefix_have_ == 0 && remaining_ == 0; }

 private:
  const uint64_t max_;
  unsigned char prefix_[kPrefixSize] = {};
  size_t prefix_have_ = 0;
  uint64_t remaining_ = 0;  // payload bytes still to come of the current message
};

// The prefix of a message of `length` bytes (uncompressed).
std::string Prefix(size_t length);

// Timeouts longer than this (100 years) are taken as this.
inline constexpr std::chrono::nanoseconds kMaxTimeout = std::chrono::hours(24 * 365 * 100);

// "10S", "1500m", ...: the grpc-timeout header. nullopt if malformed.
std::optional<std::chrono::nanoseconds> ParseTimeout(std::string_view value);
// The shortest exact-enough encoding (at most 8 digits, as the spec says),
// rounding up so that the receiver never waits less.
std::string FormatTimeout(std::chrono::nanoseconds timeout);

// grpc-message is percent-encoded (bytes outside 0x20-0x7e, and '%').
std::string EncodeMessage(std::string_view message);
std::string DecodeMessage(std::string_view encoded);

// The status of a finished call, as its trailers carry it.
struct CallStatus {
  StatusCode code = StatusCode::kOk;
  std::string message;  // decoded
  // Everything else of the trailers (grpc-status-details-bin and the
  // server's trailing metadata), to pass on as is.
  HeaderList extra;
};

// From trailers (or a trailers-only response's headers). A missing or
// malformed grpc-status is UNKNOWN (or INTERNAL), as gRPC clients read it;
// `http_status` (":status" of the response, when known) maps to a code when
// there is no grpc-status, as PROTOCOL-HTTP2.md says.
CallStatus StatusFromTrailers(const HeaderList& trailers, std::optional<int> http_status);

// Trailers for `status` (+ its extra fields). With `headers_sent` false,
// a trailers-only response: :status and content-type first.
HeaderList TrailersFor(const CallStatus& status, bool headers_sent);

}  // namespace praefect::http2::rpc
