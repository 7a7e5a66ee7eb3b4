#include "yamux/frame.h"

namespace praefect::yamux {

namespace {

void Put16(uint16_t v, char* out) {
  out[0] = static_cast<char>(v >> 8);
  out[1] = static_cast<char>(v);
}

void Put32(uint32_t v, char* out) {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}

uint16_t Get16(const char* in) {
  const auto* b = reinterpret_cast<const unsigned char*>(in);
  return static_cast<uint16_t>((b[0] << 8) | b[1]);
}

uint32_t Get32(const char* in) {
  const auto* b = reinterpret_cast<const unsigned char*>(in);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

}  // namespace

void EncodeHeader(const FrameHeader& header, char* out) {
  out[0] = static_cast<char>(header.version);
  out[1] = static_cast<char>(header.type);
  Put16(header.flags, out + 2);
  Put32(header.stream_id, out + 4);
  Put32(header.length, out + 8);
}

void AppendHeader(FrameType type, uint16_t flags, uint32_t stream_id, uint32_t length, std::string* out) {
  char bytes[kHeaderSize];
  EncodeHeader(FrameHeader{kProtocolVersion, static_cast<uint8_t>(type), flags, stream_id, length}, bytes);
  out->append(bytes, kHeaderSize);
}

FrameHeader DecodeHeader(const char* in) {
  FrameHeader h;
  h.version = static_cast<uint8_t>(in[0]);
  h.type = static_cast<uint8_t>(in[1]);
  h.flags = Get16(in + 2);
  h.stream_id = Get32(in + 4);
  h.length = Get32(in + 8);
  return h;
}

std::string FrameTypeName(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kData:
      return "Data";
    case FrameType::kWindowUpdate:
      return "WindowUpdate";
    case FrameType::kPing:
      return "Ping";
    case FrameType::kGoAway:
      return "GoAway";
  }
  return "type " + std::to_string(type);
}

std::string FlagNames(uint16_t flags) {
  if (flags == 0) return "none";
  static constexpr struct {
    uint16_t bit;
    const char* name;
  } kNames[] = {{kFlagSyn, "SYN"}, {kFlagAck, "ACK"}, {kFlagFin, "FIN"}, {kFlagRst, "RST"}};
  std::string out;
  for (const auto& n : kNames) {
    if ((flags & n.bit) == 0) continue;
    if (!out.empty()) out += '|';
    out += n.name;
  }
  if (const uint16_t unknown = flags & ~kKnownFlags; unknown != 0) {
    static constexpr char kHex[] = "0123456789abcdef";
    if (!out.empty()) out += '|';
    out += "0x";
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const int digit = (unknown >> shift) & 0xf;
      if (digit == 0 && !started && shift > 0) continue;
      started = true;
      out += kHex[digit];
    }
  }
  return out;
}

std::string GoAwayCodeName(uint32_t code) {
  switch (static_cast<GoAwayCode>(code)) {
    case GoAwayCode::kNormal:
      return "normal";
    case GoAwayCode::kProtocolError:
      return "protocol error";
    case GoAwayCode::kInternalError:
      return "internal error";
  }
  return "code " + std::to_string(code);
}

std::string DescribeHeader(const FrameHeader& header) {
  std::string out = FrameTypeName(header.type);
  out += ' ';
  out += FlagNames(header.flags);
  out += " stream ";
  out += std::to_string(header.stream_id);
  out += " length ";
  out += std::to_string(header.length);
  return out;
}

std::string HexBytes(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 3);
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (!out.empty()) out += ' ';
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

}  // namespace praefect::yamux
