#include "http2/grpc.h"

#include <charconv>

namespace praefect::http2::rpc {

MessageScanner::Result MessageScanner::Feed(std::string_view bytes) {
  Result r;
  size_t i = 0;
  while (i < bytes.size()) {
    if (remaining_ > 0) {
      const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, bytes.size() - i));
      remaining_ -= take;
      i += take;
      if (remaining_ == 0) ++r.messages_ended;
      continue;
    }
    prefix_[prefix_have_++] = static_cast<unsigned char>(bytes[i++]);
    if (prefix_have_ < kPrefixSize) continue;
    prefix_have_ = 0;
    const uint64_t length = (uint64_t{prefix_[1]} << 24) | (uint64_t{prefix_[2]} << 16) |
                            (uint64_t{prefix_[3]} << 8) | uint64_t{prefix_[4]};
    if (prefix_[0] & 1) r.compressed = true;
    ++r.messages_started;
    if (length > max_ && !r.oversized) r.oversized = length;
    remaining_ = length;
    if (length == 0) ++r.messages_ended;
  }
  return r;
}

std::string Prefix(size_t length) {
  std::string p(kPrefixSize, '\0');
  p[1] = static_cast<char>((length >> 24) & 0xff);
  p[2] = static_cast<char>((length >> 16) & 0xff);
  p[3] = static_cast<char>((length >> 8) & 0xff);
  p[4] = static_cast<char>(length & 0xff);
  return p;
}

std::optional<std::chrono::nanoseconds> ParseTimeout(std::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size() - 1, n);
  if (ec != std::errc() || end != value.data() + value.size() - 1 || n < 0) return std::nullopt;
  int64_t unit_ns = 0;
  switch (value.back()) {
    case 'H': unit_ns = 3'600'000'000'000; break;
    case 'M': unit_ns = 60'000'000'000; break;
    case 'S': unit_ns = 1'000'000'000; break;
    case 'm': unit_ns = 1'000'000; break;
    case 'u': unit_ns = 1'000; break;
    case 'n': unit_ns = 1; break;
    default: return std::nullopt;
  }
  // 99999999H is 11,000 years, past what nanoseconds hold: a timeout that
  // long is as good as none, and is capped so that deadlines stay exact.
  if (n > kMaxTimeout.count() / unit_ns) return kMaxTimeout;
  return std::chrono::nanoseconds(n * unit_ns);
}

std::string FormatTimeout(std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return "1n";
  constexpr int64_t kMax = 99'999'999;
  struct Unit {
    int64_t ns;
    char name;
  };
  static constexpr Unit kUnits[] = {{1, 'n'},
                                     {1'000, 'u'},
                                     {1'000'000, 'm'},
                                     {1'000'000'000, 'S'},
                                     {60'000'000'000, 'M'},
                                     {3'600'000'000'000, 'H'}};
  const int64_t ns = timeout.count();
  for (const Unit& u : kUnits) {
    const int64_t v = (ns + u.ns - 1) / u.ns;  // rounded up
    if (v <= kMax) return std::to_string(v) + u.name;
  }
  return std::to_string(kMax) + "H";
}

std::string EncodeMessage(std::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char c : message) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b <= 0x7e && b != '%') {
      out += c;
    } else {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    }
  }
  return out;
}

std::string DecodeMessage(std::string_view encoded) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] == '%' && i + 2 < encoded.size()) {
      const int hi = hex(encoded[i + 1]);
      const int lo = hex(encoded[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += encoded[i];
  }
  return out;
}

namespace {

StatusCode FromHttpStatus(int http) {
  switch (http) {
    case 400: return StatusCode::kInternal;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504: return StatusCode::kUnavailable;
    default: return StatusCode::kUnknown;
  }
}

}  // namespace

CallStatus StatusFromTrailers(const HeaderList& trailers, std::optional<int> http_status) {
  CallStatus st;
  const std::string* code = FindHeader(trailers, "grpc-status");
  if (code == nullptr) {
    if (http_status && *http_status != 200) {
      st.code = FromHttpStatus(*http_status);
      st.message = "the node answered HTTP status " + std::to_string(*http_status) + " without a gRPC status";
    } else {
      st.code = StatusCode::kInternal;
      st.message = "the node's response ended without a gRPC status";
    }
  } else {
    int value = 0;
    auto [end, ec] = std::from_chars(code->data(), code->data() + code->size(), value);
    if (ec != std::errc() || end != code->data() + code->size() || value < 0 || value > 16) {
      st.code = StatusCode::kUnknown;
      st.message = "the node sent a malformed grpc-status";
    } else {
      st.code = static_cast<StatusCode>(value);
    }
  }
  if (const std::string* message = FindHeader(trailers, "grpc-message")) st.message = DecodeMessage(*message);
  for (const HeaderField& f : trailers) {
    if (f.name.empty() || f.name[0] == ':' || f.name == "grpc-status" || f.name == "grpc-message" ||
        f.name == "content-type")
      continue;
    st.extra.push_back(f);
  }
  return st;
}

HeaderList TrailersFor(const CallStatus& status, bool headers_sent) {
  HeaderList out;
  out.reserve(4 + status.extra.size());
  if (!headers_sent) {
    out.push_back({":status", "200"});
    out.push_back({"content-type", "application/grpc"});
  }
  out.push_back({"grpc-status", std::to_string(static_cast<int>(status.code))});
  if (!status.message.empty()) out.push_back({"grpc-message", EncodeMessage(status.message)});
  for (const HeaderField& f : status.extra) out.push_back(f);
  return out;
}

}  // namespace praefect::http2::rpc
