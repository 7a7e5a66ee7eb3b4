#include "common/ntp.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace praefect {
namespace {

using std::chrono::nanoseconds;

// Seconds between 1900-01-01 (NTP's era 0) and 1970-01-01.
constexpr uint64_t kNtpToUnix = 2208988800ULL;

uint64_t ToNtp(std::chrono::system_clock::time_point t) {
  const auto ns = std::chrono::duration_cast<nanoseconds>(t.time_since_epoch()).count();
  const uint64_t secs = static_cast<uint64_t>(ns / 1000000000) + kNtpToUnix;
  const uint64_t frac = (static_cast<uint64_t>(ns % 1000000000) << 32) / 1000000000;
  return (secs << 32) | frac;
}

// As nanoseconds since the Unix epoch (signed: offsets are differences).
int64_t NtpToUnixNs(uint64_t ntp) {
  const int64_t secs = static_cast<int64_t>(ntp >> 32) - static_cast<int64_t>(kNtpToUnix);
  const int64_t frac = static_cast<int64_t>(((ntp & 0xffffffffULL) * 1000000000ULL) >> 32);
  return secs * 1000000000 + frac;
}

uint64_t ReadU64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

void WriteU64(unsigned char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<unsigned char>(v & 0xff);
}

// host[:port] or [v6][:port].
void SplitHostPort(std::string_view address, std::string* host, std::string* port) {
  *port = "123";
  if (address.starts_with("[")) {
    size_t close = address.find(']');
    *host = std::string(address.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
    if (close != std::string_view::npos && close + 1 < address.size() && address[close + 1] == ':')
      *port = std::string(address.substr(close + 2));
    return;
  }
  size_t colon = address.rfind(':');
  if (colon != std::string_view::npos && address.find(':') == colon) {
    *host = std::string(address.substr(0, colon));
    *port = std::string(address.substr(colon + 1));
  } else {
    *host = std::string(address);
  }
}

Status QueryError(const std::string& why) { return Unavailable("query ntp host: " + why); }
Status ValidateError(const std::string& why) { return Unavailable("validate ntp response: " + why); }

}  // namespace

StatusOr<nanoseconds> QueryClockOffset(std::string_view address, std::chrono::milliseconds timeout) {
  std::string host, port;
  SplitHostPort(address, &host, &port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
    return QueryError("lookup " + host + ": " + gai_strerror(rc));
  const int fd = socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(found);
    return QueryError(std::string("socket: ") + std::strerror(errno));
  }
  const int connected = connect(fd, found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  if (connected != 0) return QueryError("dial udp " + std::string(address) + ": " + std::strerror(errno));

  // LI 0, version 4, mode 3 (client); the transmit timestamp is ours (T1),
  // and a valid answer carries it back as its origin timestamp.
  unsigned char request[48] = {};
  request[0] = 0x23;
  const auto t1 = std::chrono::system_clock::now();
  const uint64_t t1_ntp = ToNtp(t1);
  WriteU64(request + 40, t1_ntp);
  if (send(fd, request, sizeof(request), 0) != static_cast<ssize_t>(sizeof(request)))
    return QueryError(std::string("write: ") + std::strerror(errno));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  unsigned char answer[128];
  ssize_t n = -1;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return QueryError("read udp " + std::string(address) + ": i/o timeout");
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    n = recv(fd, answer, sizeof(answer), 0);
    if (n < 0) return QueryError("read udp " + std::string(address) + ": " + std::strerror(errno));
    if (n >= 48) break;  // shorter datagrams are not NTP: wait for another
  }
  const auto t4 = std::chrono::system_clock::now();
  const int leap = answer[0] >> 6;
  const int mode = answer[0] & 0x7;
  const int stratum = answer[1];
  const uint64_t origin = ReadU64(answer + 24);
  const uint64_t t2 = ReadU64(answer + 32);
  const uint64_t t3 = ReadU64(answer + 40);
  if (mode != 4 && mode != 5) return ValidateError("invalid mode " + std::to_string(mode));
  if (stratum == 0) return ValidateError("kiss of death received");
  if (stratum > 15) return ValidateError("invalid stratum in response");
  if (leap == 3) return ValidateError("invalid leap second");
  if (origin != t1_ntp) return ValidateError("server response mismatch");
  if (t3 == 0) return ValidateError("invalid transmit time in response");
  // offset = ((T2 - T1) + (T3 - T4)) / 2
  const int64_t t1_ns = NtpToUnixNs(t1_ntp);
  const int64_t t4_ns = std::chrono::duration_cast<nanoseconds>(t4.time_since_epoch()).count();
  const int64_t offset = ((NtpToUnixNs(t2) - t1_ns) + (NtpToUnixNs(t3) - t4_ns)) / 2;
  return nanoseconds(offset);
}

StatusOr<bool> ClockSynced(std::string_view host, nanoseconds drift_threshold, std::chrono::milliseconds timeout) {
  auto offset = QueryClockOffset(host.empty() ? kDefaultNtpHost : host, timeout);
  if (!offset.ok()) return offset.status();
  return *offset <= drift_threshold && *offset >= -drift_threshold;
}

}  // namespace praefect
