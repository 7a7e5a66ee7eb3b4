// The SNTP client (common/ntp.h) against a responder on a loopback UDP
// socket in this process: the offset it computes, and Gitaly's refusals of
// answers that must not be trusted.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "common/ntp.h"
#include "test_support.h"

using namespace std::chrono;

namespace {

// Answers each request with a server clock `offset` ahead; `stratum` and
// `echo_origin` let a case send a bad answer; `silent` answers nothing.
struct Responder {
  int fd = -1;
  int port = 0;
  seconds offset{0};
  int stratum = 1;
  bool echo_origin = true;
  bool silent = false;
  std::atomic<bool> stop{false};
  std::thread thread;

  Responder() {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    timeval tv{0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread = std::thread([this] { Serve(); });
  }
  ~Responder() {
    stop = true;
    thread.join();
    close(fd);
  }
  std::string Address() const { return "127.0.0.1:" + std::to_string(port); }

  static void Stamp(unsigned char* p, system_clock::time_point t) {
    const auto ns = duration_cast<nanoseconds>(t.time_since_epoch()).count();
    uint64_t v = ((static_cast<uint64_t>(ns / 1000000000) + 2208988800ULL) << 32) |
                 ((static_cast<uint64_t>(ns % 1000000000) << 32) / 1000000000);
    for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<unsigned char>(v);
  }

  void Serve() {
    while (!stop) {
      unsigned char req[64];
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      ssize_t n = recvfrom(fd, req, sizeof(req), 0, reinterpret_cast<sockaddr*>(&peer), &len);
      if (n < 48 || silent) continue;
      unsigned char reply[48] = {};
      reply[0] = 0x24;  // version 4, server
      reply[1] = static_cast<unsigned char>(stratum);
      Stamp(reply + 32, system_clock::now() + offset);
      if (echo_origin) std::copy(req + 40, req + 48, reply + 24);
      Stamp(reply + 40, system_clock::now() + offset);
      sendto(fd, reply, sizeof(reply), 0, reinterpret_cast<sockaddr*>(&peer), len);
    }
  }
};

void OffsetAndVerdict(void**) {
  Responder r;
  r.offset = seconds(-90);
  auto offset = praefect::QueryClockOffset(r.Address(), milliseconds(2000));
  assert_status_ok(offset.status());
  expect_that(*offset > seconds(-91) && *offset < seconds(-89),
              "about -90 s, got " + std::to_string(duration_cast<milliseconds>(*offset).count()) + " ms");
  auto synced = praefect::ClockSynced(r.Address(), minutes(1), milliseconds(2000));
  expect_that(synced.ok() && !*synced, "90 s off is not within 1m");
  synced = praefect::ClockSynced(r.Address(), minutes(2), milliseconds(2000));
  expect_that(synced.ok() && *synced, "90 s off is within 2m");
}

void UntrustedAnswers(void**) {
  Responder r;
  r.stratum = 0;
  auto kod = praefect::QueryClockOffset(r.Address(), milliseconds(2000));
  expect_that(!kod.ok() && kod.status().message() == "validate ntp response: kiss of death received",
              "kiss of death: " + kod.status().ToString());
  r.stratum = 1;
  r.echo_origin = false;
  auto spoofed = praefect::QueryClockOffset(r.Address(), milliseconds(2000));
  expect_that(!spoofed.ok() && spoofed.status().message() == "validate ntp response: server response mismatch",
              "another origin: " + spoofed.status().ToString());
  r.silent = true;
  auto none = praefect::QueryClockOffset(r.Address(), milliseconds(200));
  expect_that(!none.ok() && none.status().message() == "query ntp host: read udp " + r.Address() + ": i/o timeout",
              "no answer: " + none.status().ToString());
  auto bad = praefect::QueryClockOffset("no-such-host.invalid", milliseconds(200));
  expect_that(!bad.ok() && bad.status().message().rfind("query ntp host: lookup no-such-host.invalid: ", 0) == 0,
              "unresolvable: " + bad.status().ToString());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(OffsetAndVerdict),
      cmocka_unit_test(UntrustedAnswers),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
