#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// The yamux frame header (hashicorp/yamux's spec.md, protocol version 0):
// 12 bytes, big endian, in front of every frame.
//
//   0        1        2        4            8            12
//   version  type     flags    stream id    length
//
// `length` is the payload size of a Data frame, the window delta of a Window
// Update, the opaque value of a Ping, and the error code of a Go Away. Only
// Data frames carry a payload.
namespace praefect::yamux {

inline constexpr uint8_t kProtocolVersion = 0;
inline constexpr size_t kHeaderSize = 12;
// Every stream starts with this receive window on both sides, before any
// Window Update.
inline constexpr uint32_t kInitialStreamWindow = 256 * 1024;

enum class FrameType : uint8_t {
  kData = 0,
  kWindowUpdate = 1,
  kPing = 2,
  kGoAway = 3,
};

// Flags, or-ed in the header's 16-bit field.
inline constexpr uint16_t kFlagSyn = 1;  // opens a stream; a Ping request
inline constexpr uint16_t kFlagAck = 2;  // acknowledges a stream; a Ping answer
inline constexpr uint16_t kFlagFin = 4;  // half-closes a stream
inline constexpr uint16_t kFlagRst = 8;  // resets a stream
inline constexpr uint16_t kKnownFlags = kFlagSyn | kFlagAck | kFlagFin | kFlagRst;

// The `length` of a Go Away frame.
enum class GoAwayCode : uint32_t {
  kNormal = 0,
  kProtocolError = 1,
  kInternalError = 2,
};

struct FrameHeader {
  uint8_t version = kProtocolVersion;
  uint8_t type = 0;  // a FrameType when valid; kept raw so that errors can name what came
  uint16_t flags = 0;
  uint32_t stream_id = 0;
  uint32_t length = 0;
};

// Writes the 12 bytes of `header` at `out`.
void EncodeHeader(const FrameHeader& header, char* out);
// Appends the 12 bytes of a header to `out`.
void AppendHeader(FrameType type, uint16_t flags, uint32_t stream_id, uint32_t length, std::string* out);
// Reads the 12 bytes at `in`. No validation: every bit pattern is a header.
FrameHeader DecodeHeader(const char* in);

// "Data", "WindowUpdate", "Ping", "GoAway", or "type 7".
std::string FrameTypeName(uint8_t type);
// "SYN|FIN", "none", "ACK|0x40" for flags outside the four.
std::string FlagNames(uint16_t flags);
// "normal", "protocol error", "internal error", or "code 9".
std::string GoAwayCodeName(uint32_t code);
// "WindowUpdate SYN stream 3 length 0", for error messages.
std::string DescribeHeader(const FrameHeader& header);
// The 12 bytes in hex ("00 01 00 01 ..."), for errors about bytes that are
// not a valid header: they often tell what the peer speaks instead.
std::string HexBytes(std::string_view bytes);

}  // namespace praefect::yamux
