// What a broken or hostile peer can send: each case ends the session with a
// clear, sticky UNAVAILABLE and (for the peer's protocol errors) a GoAway
// telling it why; fed whole and byte by byte; never a crash.
#include <string>
#include <vector>

#include "yamux/session.h"
#include "yamux_harness.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::yamux::DecodeHeader;
using praefect::yamux::FrameType;
using praefect::yamux::GoAwayCode;
using praefect::yamux::kFlagAck;
using praefect::yamux::kFlagFin;
using praefect::yamux::kFlagRst;
using praefect::yamux::kFlagSyn;
using praefect::yamux::kHeaderSize;
using praefect::yamux::Role;
using praefect::yamux::Session;
using praefect::yamux::SessionOptions;
using praefect::yamux::testing::Frame;
using praefect::yamux::testing::Recorder;

namespace {

constexpr auto kData = FrameType::kData;
constexpr auto kUpdate = FrameType::kWindowUpdate;
constexpr auto kPing = FrameType::kPing;
constexpr auto kGoAway = FrameType::kGoAway;

std::string Syn(uint32_t id) { return Frame(kUpdate, kFlagSyn, id, 0); }
std::string Bytes(size_t n) { return std::string(n, 'x'); }

struct Case {
  const char* name;
  Role role;             // of the session that receives
  std::string bytes;     // what the peer sends
  std::string expected;  // in the message, after "yamux session with peer: "
  bool goaway_back = true;
};

std::vector<Case> Cases() {
  const std::string header = "\x01" + std::string(11, '\0');
  return {
      {"bad version", Role::kServer, header,
       "protocol error: frame header of version 1 (only version 0 exists): bytes 01 00 00 00 00 00 00 00 00 00 00 00; "
       "does the peer speak yamux?"},
      {"HTTP/2 instead of yamux", Role::kClient, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
       "protocol error: frame header of version 80 (only version 0 exists): bytes 50 52 49 20 2a 20 48 54 54 50 2f 32; "
       "does the peer speak yamux?"},
      {"unknown type", Role::kServer, std::string("\0\x04", 2) + std::string(10, '\0'),
       "protocol error: frame of unknown type 4 (bytes 00 04 00 00 00 00 00 00 00 00 00 00)"},
      {"unknown flag", Role::kServer, Frame(kUpdate, kFlagSyn | 0x10, 1, 0),
       "protocol error: WindowUpdate SYN|0x10 stream 1 length 0: unknown flags"},
      {"data on stream 0", Role::kServer, Frame(kData, 0, 0, 1, "x"),
       "protocol error: Data none stream 0 length 1: stream 0 is the session's, not a stream"},
      {"window update on stream 0", Role::kClient, Frame(kUpdate, 0, 0, 5),
       "protocol error: WindowUpdate none stream 0 length 5: stream 0 is the session's, not a stream"},
      {"data for a stream never opened", Role::kServer, Frame(kData, 0, 1, 2, "xx"),
       "protocol error: Data none stream 1 length 2: stream 1 was never opened"},
      {"update for our stream never opened", Role::kServer, Frame(kUpdate, 0, 2, 0),
       "protocol error: WindowUpdate none stream 2 length 0: stream 2 was never opened"},
      {"peer opens an even id", Role::kServer, Syn(2),
       "protocol error: WindowUpdate SYN stream 2 length 0: the peer opened stream 2, an id of ours (the client "
       "opens odd ids)"},
      {"peer opens an odd id", Role::kClient, Syn(3),
       "protocol error: WindowUpdate SYN stream 3 length 0: the peer opened stream 3, an id of ours (the server "
       "opens even ids)"},
      {"ids going down", Role::kServer, Syn(5) + Syn(3),
       "protocol error: WindowUpdate SYN stream 3 length 0: the peer opened stream 3 after stream 5 (ids must grow)"},
      {"duplicate SYN", Role::kServer, Syn(1) + Syn(1),
       "protocol error: WindowUpdate SYN stream 1 length 0: stream 1 is already open"},
      {"SYN and ACK", Role::kServer, Frame(kUpdate, kFlagSyn | kFlagAck, 1, 0),
       "protocol error: WindowUpdate SYN|ACK stream 1 length 0: SYN and ACK together"},
      {"ACK of the peer's own stream", Role::kServer, Syn(1) + Frame(kUpdate, kFlagAck, 1, 0),
       "protocol error: WindowUpdate ACK stream 1 length 0: ACK for stream 1, which awaits no acknowledgement"},
      {"data with SYN beyond the initial window", Role::kServer, Frame(kData, kFlagSyn, 1, 262145),
       "protocol error: Data SYN stream 1 length 262145: 262145 bytes on stream 1 exceed its receive window (262144 "
       "bytes)"},
      {"data beyond what is left of the window", Role::kServer,
       Syn(1) + Frame(kData, 0, 1, 200000, Bytes(200000)) + Frame(kData, 0, 1, 100000),
       "protocol error: Data none stream 1 length 100000: 100000 bytes on stream 1 exceed its receive window (62144 "
       "bytes)"},
      {"data after FIN", Role::kServer, Syn(1) + Frame(kUpdate, kFlagFin, 1, 0) + Frame(kData, 0, 1, 1, "x"),
       "protocol error: Data none stream 1 length 1: data on stream 1 after its FIN"},
      {"second FIN", Role::kServer, Syn(1) + Frame(kData, kFlagFin, 1, 0) + Frame(kUpdate, kFlagFin, 1, 0),
       "protocol error: WindowUpdate FIN stream 1 length 0: a second FIN on stream 1"},
      {"window overflow", Role::kServer, Syn(1) + Frame(kUpdate, 0, 1, 0xffffffff),
       "protocol error: WindowUpdate none stream 1 length 4294967295: stream 1's send window of 262144 bytes would "
       "overflow 32 bits"},
      {"ping on a stream", Role::kServer, Frame(kPing, kFlagSyn, 1, 0),
       "protocol error: Ping SYN stream 1 length 0: a Ping belongs to stream 0"},
      {"ping without flags", Role::kServer, Frame(kPing, 0, 0, 0),
       "protocol error: Ping none stream 0 length 0: a Ping carries SYN (a request) or ACK (an answer)"},
      {"ping with SYN and ACK", Role::kClient, Frame(kPing, kFlagSyn | kFlagAck, 0, 0),
       "protocol error: Ping SYN|ACK stream 0 length 0: a Ping carries SYN (a request) or ACK (an answer)"},
      {"goaway on a stream", Role::kServer, Frame(kGoAway, 0, 5, 0),
       "protocol error: GoAway none stream 5 length 0: a GoAway belongs to stream 0 and has no flags"},
      {"goaway with flags", Role::kServer, Frame(kGoAway, kFlagRst, 0, 0),
       "protocol error: GoAway RST stream 0 length 0: a GoAway belongs to stream 0 and has no flags"},
      {"goaway: protocol error", Role::kClient, Frame(kGoAway, 0, 0, 1),
       "the peer ended the session with GoAway (protocol error): it found our frames malformed", false},
      {"goaway: unknown code", Role::kClient, Frame(kGoAway, 0, 0, 7),
       "the peer ended the session with GoAway with the unknown code 7", false},
  };
}

// Feeds `c` to a fresh session in pieces of `piece` bytes and checks the
// outcome.
void Run(const Case& c, size_t piece) {
  const std::string what = std::string(c.name) + " (pieces of " + std::to_string(piece) + ")";
  SessionOptions options;
  options.role = c.role;
  options.peer = "peer";
  Recorder listener;
  listener.auto_consume = false;
  auto session = std::move(Session::Create(options, &listener)).value();
  listener.session = session.get();
  Status st;
  for (size_t off = 0; off < c.bytes.size() && st.ok(); off += piece) {
    st = session->Receive(std::string_view(c.bytes).substr(off, piece));
  }
  const std::string expected = "yamux session with peer: " + c.expected;
  expect_that(st.code() == StatusCode::kUnavailable && st.message() == expected,
              what + ": \"" + expected + "\", got " + st.ToString());
  // Sticky, whatever comes next.
  expect_that(session->Receive(Syn(101)).message() == expected, what + ": sticky on Receive");
  expect_that(session->ReceiveEof().message() == expected, what + ": sticky on ReceiveEof");
  expect_that(session->Open().status().message() == expected, what + ": sticky on Open");
  expect_that(session->Ping().status().message() == expected, what + ": sticky on Ping");
  size_t errors = 0;
  for (const auto& e : listener.events) errors += e.rfind("error ", 0) == 0;
  expect_that(errors == 1, what + ": OnError once");
  // The peer hears why, last.
  std::string out;
  session->TakeOutput(&out);
  if (c.goaway_back) {
    expect_that(out.size() >= kHeaderSize, what + ": a GoAway sent");
    const auto h = DecodeHeader(out.data() + out.size() - kHeaderSize);
    expect_that(
        h.type == static_cast<uint8_t>(kGoAway) && h.length == static_cast<uint32_t>(GoAwayCode::kProtocolError),
        what + ": GoAway(protocol error) last");
  } else {
    expect_that(out.empty(), what + ": nothing sent back");
  }
}

void test_malformed_input_whole(void**) {
  for (const Case& c : Cases()) Run(c, c.bytes.size());
}

void test_malformed_input_byte_by_byte(void**) {
  for (const Case& c : Cases()) Run(c, 1);
}

void test_end_of_connection_inside_a_frame(void**) {
  SessionOptions options;
  options.role = Role::kServer;
  options.peer = "peer";
  Recorder listener;
  auto a = std::move(Session::Create(options, &listener)).value();
  listener.session = a.get();
  assert_status_ok(a->Receive(Syn(1).substr(0, 5)));
  auto st = a->ReceiveEof();
  expect_that(st.message() == "yamux session with peer: the connection ended inside a frame header (5 of 12 bytes)",
              "got " + st.message());
  auto b = std::move(Session::Create(options, &listener)).value();
  listener.session = b.get();
  assert_status_ok(b->Receive(Syn(1) + Frame(kData, 0, 1, 100, "0123456789")));
  st = b->ReceiveEof();
  expect_that(st.message() ==
                  "yamux session with peer: the connection ended inside a Data frame (90 bytes of its payload "
                  "missing) with 1 streams open",
              "got " + st.message());
  std::string out;
  b->TakeOutput(&out);
  // Only the ACK of the accept: no GoAway to a connection that is gone.
  assert_int_equal(out.size(), kHeaderSize);
}

void test_frames_of_ended_streams_are_dropped(void**) {
  // Refused (backlog 1 full), reset by us, closed both ways: what the peer
  // sent before it knew is dropped without an error.
  SessionOptions options;
  options.role = Role::kServer;
  options.accept_backlog = 1;
  Recorder listener;
  listener.auto_accept = false;
  auto s = std::move(Session::Create(options, &listener)).value();
  listener.session = s.get();
  assert_status_ok(s->Receive(Syn(1) + Syn(3) + Frame(kData, 0, 3, 4, "lost") + Frame(kUpdate, kFlagFin, 3, 0)));
  assert_int_equal(s->refused_streams(), 1);
  assert_status_ok(s->Reset(1));
  assert_status_ok(s->Receive(Frame(kData, 0, 1, 3, "abc") + Frame(kUpdate, kFlagRst, 1, 0)));
  const uint32_t own = *s->Open();
  assert_status_ok(s->Receive(Frame(kUpdate, kFlagAck | kFlagFin, own, 0)));
  assert_status_ok(s->Close(own));
  assert_false(s->IsOpen(own));
  assert_status_ok(s->Receive(Frame(kUpdate, 0, own, 1000) + Frame(kData, 0, own, 2, "zz")));
  assert_true(listener.data.empty());
  assert_status_ok(s->error());
}

void test_random_bytes_never_crash(void**) {
  // Deterministic noise: valid-looking headers with random fields, some
  // truncated. Each input either parses or ends with a protocol error.
  uint64_t x = 0x9e3779b97f4a7c15;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int round = 0; round < 3000; ++round) {
    std::string bytes;
    const int frames = 1 + static_cast<int>(next() % 6);
    for (int f = 0; f < frames; ++f) {
      const auto type = static_cast<FrameType>(next() % 5);
      const auto flags = static_cast<uint16_t>(next() % 20);
      const auto id = static_cast<uint32_t>(next() % 6);
      const auto len = static_cast<uint32_t>(next() % 3 == 0 ? next() : next() % 40);
      bytes += Frame(type, flags, id, len);
      if (type == kData) bytes += Bytes(std::min<uint32_t>(len, 64));
    }
    SessionOptions options;
    options.role = (round & 1) ? Role::kClient : Role::kServer;
    Recorder listener;
    listener.auto_accept = round % 3 != 0;
    auto s = std::move(Session::Create(options, &listener)).value();
    listener.session = s.get();
    const size_t piece = 1 + next() % 16;
    Status st;
    for (size_t off = 0; off < bytes.size() && st.ok(); off += piece) {
      st = s->Receive(std::string_view(bytes).substr(off, piece));
    }
    expect_that(st.ok() || st.code() == StatusCode::kUnavailable, "OK or UNAVAILABLE, got " + st.ToString());
    (void)s->ReceiveEof();
  }
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_malformed_input_whole),
      cmocka_unit_test(test_malformed_input_byte_by_byte),
      cmocka_unit_test(test_end_of_connection_inside_a_frame),
      cmocka_unit_test(test_frames_of_ended_streams_are_dropped),
      cmocka_unit_test(test_random_bytes_never_crash),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
