// praefect's yamux::Session against the reference implementation,
// hashicorp/yamux (Debian's golang-github-hashicorp-yamux-dev), over TCP,
// with the roles of Gitaly's backchannel: this side dials, writes
// "backchannel" and is the yamux client; interop-yamuxpeer
// (tests/interop/yamuxpeer) is the node's yamux server. Scenarios, each with
// a fresh peer process:
//
//   streams     concurrent streams both ways: echo of 4 MiB, 1 MiB and
//               100 KiB, a checksum of 8 MiB sent, 8 MiB received, 4 streams
//               the peer opens with 3 MiB echoed back, pings both ways (and
//               the peer's keep-alive), a stream reset mid-way, GoAway
//   node-like   the peer configured as Gitaly configures its side (accept
//               backlog 1, 16 MiB window): 8 streams opened back to us,
//               which it can only open one at a time, as we acknowledge them
//   refused     the peer, backlog 1 and not accepting, refuses our opens
//   we-refuse   our backlog of 1 refuses the peer's opens
//   throughput  64 MiB each way on one stream, with our window at 256 KiB
//               (praefect's default) and at 16 MiB
//
// usage: yamux_interop_test PATH/TO/interop-yamuxpeer
// Exit 0: all passed; 1: a failure (explained); 77: the peer binary is
// missing (no Go toolchain): skipped.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "driver.h"

namespace {

using praefect::yamux::SessionOptions;
using yamuxtest::App;
using yamuxtest::Driver;

constexpr auto kTimeout = std::chrono::seconds(120);

std::string peer_binary;

struct Peer {
  pid_t pid = -1;
  int port = 0;
};

// Starts the peer with `args`; reads its "listening on HOST:PORT" line.
bool StartPeer(const std::vector<std::string>& args, Peer* peer) {
  int out[2];
  if (::pipe(out) != 0) return false;
  const pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(peer_binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(peer_binary.c_str(), argv.data());
    std::perror("execv");
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  peer->pid = pid;
  const size_t colon = line.rfind(':');
  if (line.rfind("listening on ", 0) != 0 || colon == std::string::npos) {
    std::fprintf(stderr, "the peer said %s instead of \"listening on HOST:PORT\"\n", line.c_str());
    return false;
  }
  peer->port = std::atoi(line.c_str() + colon + 1);
  return true;
}

int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    std::perror("connect");
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Waits for the peer to exit (it does once the session ends); kills it
// after 20 s. True when it exited 0: every command went as it expected.
bool PeerExitedCleanly(Peer& peer) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(peer.pid, &status, WNOHANG);
    if (r == peer.pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(peer.pid, SIGKILL);
      ::waitpid(peer.pid, &status, 0);
      std::fprintf(stderr, "the peer did not exit after the session ended\n");
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling a child's exit with a deadline
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "the peer exited with status %d (its reasons are above)\n", status);
    return false;
  }
  return true;
}

std::string SumLine(uint64_t seed, uint64_t n) {
  yamuxtest::Pattern p(seed, n);
  yamuxtest::Fnv1a64 h;
  std::string buf(64 * 1024, '\0');
  while (size_t k = p.Fill(buf.data(), buf.size())) h.Add(std::string_view(buf.data(), k));
  char line[64];
  std::snprintf(line, sizeof(line), "%" PRIu64 " %016" PRIx64 "\n", n, h.h);
  return line;
}

App Echo(uint64_t size, uint64_t seed) {
  App a;
  a.line = "echo\n";
  a.payload_size = size;
  a.payload_seed = seed;
  a.expect_pattern = true;
  a.expect_seed = seed;
  a.expect_size = size;
  return a;
}

App Command(const std::string& line) {
  App a;
  a.line = line + "\n";
  a.expect_text = true;
  return a;
}

bool AllDone(const Driver& d) {
  for (const auto& [id, a] : d.apps()) {
    if (!a.Done()) return false;
  }
  return true;
}

// The stream errors, and the texts that differ from what was expected.
std::string Mismatches(const Driver& d, const std::vector<std::pair<uint32_t, std::string>>& texts) {
  std::string out;
  for (const auto& [id, a] : d.apps()) {
    if (!a.error.empty()) out += " stream " + std::to_string(id) + ": " + a.error + ";";
  }
  for (const auto& [id, want] : texts) {
    const std::string& got = d.apps().at(id).text;
    if (got != want) out += " stream " + std::to_string(id) + ": \"" + want + "\" expected, got \"" + got + "\";";
  }
  return out;
}

#define CHECK(cond, ...)                                         \
  do {                                                           \
    if (!(cond)) {                                               \
      std::fprintf(stderr, "FAILED %s: ", name);                 \
      std::fprintf(stderr, __VA_ARGS__);                         \
      std::fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);    \
      return false;                                              \
    }                                                            \
  } while (0)

bool Streams() {
  const char* name = "streams";
  Peer peer;
  CHECK(StartPeer({"-backlog", "64", "-window", "16777216", "-keepalive", "50ms"}, &peer), "peer start");
  Driver d(Connect(peer.port), SessionOptions{});
  const uint32_t e1 = d.Open(Echo(4 << 20, 1));
  const uint32_t e2 = d.Open(Echo((1 << 20) + 3, 2));
  const uint32_t e3 = d.Open(Echo(100 * 1024, 3));
  App sum = Command("sum");
  sum.payload_size = 8 << 20;
  sum.payload_seed = 4;
  const uint32_t s = d.Open(std::move(sum));
  App send = Command("send 8388608 5");
  send.expect_text = false;
  send.expect_pattern = true;
  send.expect_seed = 5;
  send.expect_size = 8 << 20;
  d.Open(std::move(send));  // checked against the pattern as it comes
  const uint32_t o = d.Open(Command("open 4 3145728"));
  const uint32_t p = d.Open(Command("ping"));
  App watch = Command("watch");
  watch.payload_size = 512 * 1024;
  watch.payload_seed = 6;
  watch.reset_when_sent = true;
  const uint32_t w = d.Open(std::move(watch));
  const uint32_t a = d.Open(Command("await"));
  auto ping = d.session().Ping();
  CHECK(ping.ok(), "Ping: %s", ping.status().ToString().c_str());
  std::string why = d.Run([&] { return AllDone(d) && d.apps().size() == 13 && !d.pongs.empty(); }, kTimeout);
  CHECK(why.empty(), "%s", why.c_str());
  const std::string bad = Mismatches(
      d, {{s, SumLine(4, 8 << 20)}, {o, "ok 4\n"}, {p, "pong\n"}, {w, "watching\n"}, {a, "reset\n"}});
  CHECK(bad.empty(), "%s", bad.c_str());
  uint64_t back = 0;
  for (const auto& [id, app] : d.apps()) {
    if (id % 2 == 0) back += app.received;
  }
  CHECK(back == 4ull * 3145728, "the peer's 4 streams brought %" PRIu64 " bytes", back);
  // GoAway: the peer accepts no more of our streams.
  const uint32_t g = d.Open(Command("goaway"));
  why = d.Run([&] { return d.apps().at(g).Done() && !d.goaways.empty(); }, kTimeout);
  CHECK(why.empty(), "%s", why.c_str());
  CHECK(d.goaways[0] == 0, "GoAway code %u", d.goaways[0]);
  auto refused = d.session().Open();
  CHECK(!refused.ok() && refused.status().code() == praefect::StatusCode::kFailedPrecondition, "Open after GoAway");
  d.Hangup();
  CHECK(PeerExitedCleanly(peer), "peer exit");
  std::printf("ok streams: echo %d+%d+%d bytes on streams %u %u %u, sum of 8 MiB, 8 MiB received, "
              "4 streams opened by the peer with 3 MiB echoed each, ping both ways, stream %u reset "
              "after 512 KiB (the peer saw the reset), GoAway then Open refused\n",
              4 << 20, (1 << 20) + 3, 100 * 1024, e1, e2, e3, w);
  return true;
}

bool NodeLike() {
  const char* name = "node-like";
  Peer peer;
  CHECK(StartPeer({"-backlog", "1", "-window", "16777216", "-keepalive", "20ms"}, &peer), "peer start");
  Driver d(Connect(peer.port), SessionOptions{});
  const uint32_t o = d.Open(Command("open 8 1048576"));
  const std::string why = d.Run([&] { return AllDone(d) && d.apps().size() == 9; }, kTimeout);
  CHECK(why.empty(), "%s", why.c_str());
  const std::string bad = Mismatches(d, {{o, "ok 8\n"}});
  CHECK(bad.empty(), "%s", bad.c_str());
  d.Hangup();
  CHECK(PeerExitedCleanly(peer), "peer exit");
  std::printf("ok node-like: backlog 1, 16 MiB window, keep-alive every 20 ms: 8 streams opened by the peer "
              "one after the other, 1 MiB echoed on each\n");
  return true;
}

bool Refused() {
  const char* name = "refused";
  Peer peer;
  CHECK(StartPeer({"-backlog", "1", "-accept=false"}, &peer), "peer start");
  Driver d(Connect(peer.port), SessionOptions{});
  const uint32_t first = d.Open(Command("echo"));
  const uint32_t second = d.Open(Command("echo"));
  const uint32_t third = d.Open(Command("echo"));
  const std::string why =
      d.Run([&] { return d.apps().at(second).got_reset && d.apps().at(third).got_reset; }, kTimeout);
  CHECK(why.empty(), "%s", why.c_str());
  CHECK(!d.apps().at(first).got_reset && !d.apps().at(first).acknowledged,
        "the first open waits in the peer's backlog");
  d.Hangup();
  CHECK(PeerExitedCleanly(peer), "peer exit");
  std::printf("ok refused: the peer (backlog 1, not accepting) queued stream %u and reset %u and %u\n", first, second,
              third);
  return true;
}

bool WeRefuse() {
  const char* name = "we-refuse";
  Peer peer;
  CHECK(StartPeer({}, &peer), "peer start");
  SessionOptions options;
  options.accept_backlog = 1;
  Driver d(Connect(peer.port), options);
  d.accept = [&d] { return d.session().refused_streams() >= 2; };
  const uint32_t c = d.Open(Command("refusal 3"));
  const std::string why = d.Run([&] { return d.apps().at(c).Done(); }, kTimeout);
  CHECK(why.empty(), "%s", why.c_str());
  const std::string bad = Mismatches(d, {{c, "echoed 1 reset 2\n"}});
  CHECK(bad.empty(), "%s", bad.c_str());
  d.Hangup();
  CHECK(PeerExitedCleanly(peer), "peer exit");
  std::printf("ok we-refuse: with our backlog at 1, of 3 streams the peer opened at once 2 were reset, 1 echoed\n");
  return true;
}

double MiBPerSecond(uint64_t bytes, std::chrono::steady_clock::duration d) {
  return static_cast<double>(bytes) / (1 << 20) / std::chrono::duration<double>(d).count();
}

bool Throughput(uint32_t our_window) {
  const char* name = "throughput";
  Peer peer;
  CHECK(StartPeer({"-window", "16777216"}, &peer), "peer start");
  SessionOptions options;
  options.max_stream_window = our_window;
  Driver d(Connect(peer.port), options);
  constexpr uint64_t kSize = 64 << 20;
  auto start = std::chrono::steady_clock::now();
  App up = Command("sum");
  up.payload_size = kSize;
  up.payload_seed = 11;
  const uint32_t u = d.Open(std::move(up));
  std::string why = d.Run([&] { return d.apps().at(u).Done(); }, kTimeout);
  CHECK(why.empty(), "%s", why.c_str());
  const auto up_time = std::chrono::steady_clock::now() - start;
  start = std::chrono::steady_clock::now();
  App down = Command("send 67108864 12");
  down.expect_text = false;
  down.expect_pattern = true;
  down.expect_seed = 12;
  down.expect_size = kSize;
  const uint32_t r = d.Open(std::move(down));
  why = d.Run([&] { return d.apps().at(r).Done(); }, kTimeout);
  CHECK(why.empty(), "%s", why.c_str());
  const auto down_time = std::chrono::steady_clock::now() - start;
  const std::string bad = Mismatches(d, {{u, SumLine(11, kSize)}});
  CHECK(bad.empty(), "%s", bad.c_str());
  d.Hangup();
  CHECK(PeerExitedCleanly(peer), "peer exit");
  std::printf("ok throughput (our window %u KiB, the peer's 16 MiB): 64 MiB up in %.2f s (%.0f MiB/s), "
              "64 MiB down in %.2f s (%.0f MiB/s)\n",
              our_window / 1024, std::chrono::duration<double>(up_time).count(), MiBPerSecond(kSize, up_time),
              std::chrono::duration<double>(down_time).count(), MiBPerSecond(kSize, down_time));
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s PATH/TO/interop-yamuxpeer\n", argv[0]);
    return 2;
  }
  peer_binary = argv[1];
  if (::access(peer_binary.c_str(), X_OK) != 0) {
    std::printf("SKIP: %s was not built (it needs Go: golang-go and golang-github-hashicorp-yamux-dev)\n",
                peer_binary.c_str());
    return 77;
  }
  ::signal(SIGPIPE, SIG_IGN);
  bool ok = true;
  ok = Streams() && ok;
  ok = NodeLike() && ok;
  ok = Refused() && ok;
  ok = WeRefuse() && ok;
  ok = Throughput(256 * 1024) && ok;
  ok = Throughput(16 << 20) && ok;
  return ok ? 0 : 1;
}
