// Two yamux sessions back to back: streams opened both ways, data, flow
// control, half-close, reset, the accept backlog, ping and GoAway.
#include "yamux/session.h"

#include <map>
#include <string>
#include <vector>

#include "yamux_harness.h"
#include "test_support.h"

using praefect::StatusCode;
using praefect::yamux::FrameHeader;
using praefect::yamux::FrameType;
using praefect::yamux::GoAwayCode;
using praefect::yamux::kFlagAck;
using praefect::yamux::kFlagFin;
using praefect::yamux::kFlagRst;
using praefect::yamux::kFlagSyn;
using praefect::yamux::Session;
using praefect::yamux::SessionOptions;
using praefect::yamux::testing::Headers;
using praefect::yamux::testing::Pair;
using praefect::yamux::testing::Pattern;

namespace {

constexpr uint8_t kData = static_cast<uint8_t>(FrameType::kData);
constexpr uint8_t kWindowUpdate = static_cast<uint8_t>(FrameType::kWindowUpdate);

uint32_t OpenOk(Session& s) {
  auto id = s.Open();
  assert_status_ok(id.status());
  return *id;
}

// Writes all of `bytes` to stream `id` of `from`, pumping whenever the
// peer's window is full. Fails the test if that makes no progress.
void WriteAll(Pair& p, Session& from, uint32_t id, std::string_view bytes) {
  while (!bytes.empty()) {
    auto n = from.Write(id, bytes);
    assert_status_ok(n.status());
    bytes.remove_prefix(*n);
    if (*n == 0) {
      const size_t window_before = from.send_window(id);
      assert_true(p.Pump());
      expect_that(from.send_window(id) > window_before, "the peer to open the window of stream " + std::to_string(id));
    }
  }
  assert_true(p.Pump());
}

void test_client_opens_odd_server_accepts(void**) {
  Pair p;
  p.capture = true;
  const uint32_t a = OpenOk(*p.client);
  const uint32_t b = OpenOk(*p.client);
  assert_int_equal(a, 1);
  assert_int_equal(b, 3);
  assert_true(p.Pump());
  expect_that(p.server_events.Heard("opened 1") && p.server_events.Heard("opened 3"), "both opens heard");
  expect_that(p.client_events.Heard("acked 1") && p.client_events.Heard("acked 3"), "both acknowledged");
  // The SYN and the ACK ride on Window Updates; with the default 256 KiB
  // maximum there is no growth to announce.
  const auto c = Headers(p.client_sent);
  assert_int_equal(c.size(), 2);
  expect_that(c[0].type == kWindowUpdate && c[0].flags == kFlagSyn && c[0].stream_id == 1 && c[0].length == 0,
              "WindowUpdate SYN stream 1 delta 0");
  const auto s = Headers(p.server_sent);
  assert_int_equal(s.size(), 2);
  expect_that(s[0].type == kWindowUpdate && s[0].flags == kFlagAck && s[0].stream_id == 1, "WindowUpdate ACK 1");
  assert_int_equal(p.client->open_streams(), 2);
  assert_int_equal(p.server->pending_accepts(), 0);
}

void test_server_opens_even(void**) {
  Pair p;
  assert_int_equal(OpenOk(*p.server), 2);
  assert_int_equal(OpenOk(*p.server), 4);
  assert_true(p.Pump());
  expect_that(p.client_events.Heard("opened 2") && p.client_events.Heard("opened 4"), "client heard 2 and 4");
  expect_that(p.server_events.Heard("acked 4"), "server's stream acknowledged");
}

void test_data_both_ways_on_streams_opened_both_ways(void**) {
  Pair p;
  const uint32_t up = OpenOk(*p.client);
  const uint32_t down = OpenOk(*p.server);
  assert_true(p.Pump());
  WriteAll(p, *p.client, up, "hello");
  WriteAll(p, *p.server, up, "world");
  WriteAll(p, *p.server, down, "from the node");
  WriteAll(p, *p.client, down, "vote");
  assert_true(p.server_events.data[up] == "hello");
  assert_true(p.client_events.data[up] == "world");
  assert_true(p.client_events.data[down] == "from the node");
  assert_true(p.server_events.data[down] == "vote");
}

void test_large_transfer_many_window_updates(void**) {
  Pair p;
  p.capture = true;
  p.piece = 4096;  // the server consumes 4 KiB at a time
  const uint32_t id = OpenOk(*p.client);
  const std::string payload = Pattern(8 << 20, 1);
  WriteAll(p, *p.client, id, payload);
  assert_true(p.server_events.data[id] == payload);
  // One update each time half the window (128 KiB) was consumed: data is
  // consumed in reads of at most 4 KiB, so each update is at most one read
  // beyond half the window.
  size_t updates = 0;
  for (const FrameHeader& h : Headers(p.server_sent)) {
    if (h.type != kWindowUpdate || h.flags != 0) continue;
    ++updates;
    expect_that(h.length >= 128 * 1024 && h.length < 128 * 1024 + 4096,
                "updates of half the window, got " + std::to_string(h.length));
  }
  expect_that(updates >= 62 && updates <= 64, "about 64 window updates, got " + std::to_string(updates));
  for (const FrameHeader& h : Headers(p.client_sent)) {
    if (h.type == kData) expect_that(h.length <= 256 * 1024, "no Data frame beyond the window");
  }
}

void test_concurrent_streams_both_ways(void**) {
  Pair p;
  std::map<uint32_t, std::string> to_server, to_client;
  for (int i = 0; i < 3; ++i) {
    const uint32_t c = OpenOk(*p.client);
    const uint32_t s = OpenOk(*p.server);
    to_server[c] = Pattern((1 << 20) + 1000 * i, c);
    to_client[c] = Pattern((2 << 20) - 7 * i, 100 + c);
    to_server[s] = Pattern(700000 + i, 200 + s);
    to_client[s] = Pattern(3 << 20, 300 + s);
  }
  assert_true(p.Pump());
  std::map<uint32_t, size_t> up_off, down_off;
  bool progress = true;
  while (progress) {
    progress = false;
    for (const auto& [id, bytes] : to_server) {
      auto n = p.client->Write(id, std::string_view(bytes).substr(up_off[id]));
      assert_status_ok(n.status());
      up_off[id] += *n;
      progress = progress || *n > 0;
    }
    for (const auto& [id, bytes] : to_client) {
      auto n = p.server->Write(id, std::string_view(bytes).substr(down_off[id]));
      assert_status_ok(n.status());
      down_off[id] += *n;
      progress = progress || *n > 0;
    }
    assert_true(p.Pump());
  }
  for (const auto& [id, bytes] : to_server) {
    expect_that(p.server_events.data[id] == bytes, "stream " + std::to_string(id) + " up");
  }
  for (const auto& [id, bytes] : to_client) {
    expect_that(p.client_events.data[id] == bytes, "stream " + std::to_string(id) + " down");
  }
}

void test_writer_waits_for_consumption(void**) {
  Pair p;
  p.server_events.auto_consume = false;
  const uint32_t id = OpenOk(*p.client);
  assert_true(p.Pump());
  const std::string payload = Pattern(300 * 1024, 2);
  auto n = p.client->Write(id, payload);
  assert_status_ok(n.status());
  assert_int_equal(*n, 256 * 1024);  // the initial window, no more
  auto zero = p.client->Write(id, std::string_view(payload).substr(*n));
  assert_int_equal(*zero, 0);
  assert_true(p.Pump());
  assert_int_equal(p.server_events.data[id].size(), 256 * 1024);
  // Less than half consumed: no update yet.
  assert_status_ok(p.server->Consume(id, 100 * 1024));
  assert_true(p.Pump());
  assert_int_equal(p.client->send_window(id), 0);
  assert_false(p.client_events.Heard("writable 1"));
  // Half: the window reopens by what was consumed, and the writer hears it.
  assert_status_ok(p.server->Consume(id, 28 * 1024));
  assert_true(p.Pump());
  assert_int_equal(p.client->send_window(id), 128 * 1024);
  assert_true(p.client_events.Heard("writable 1"));
  // Consuming more than was received is the owner's mistake, not the peer's.
  auto too_much = p.server->Consume(id, 200 * 1024);
  assert_int_equal(static_cast<int>(too_much.code()), static_cast<int>(StatusCode::kFailedPrecondition));
  assert_status_ok(p.server->error());
}

void test_window_grows_to_configured_maximum(void**) {
  SessionOptions big;
  big.max_stream_window = 16 << 20;
  Pair p(big, SessionOptions{});  // a client with 16 MiB windows, a server with the default
  p.capture = true;
  p.server_events.auto_consume = false;
  const uint32_t up = OpenOk(*p.client);
  const uint32_t down = OpenOk(*p.server);
  assert_true(p.Pump());
  // The client's SYN and ACK announce the growth: the server may send 16 MiB.
  assert_int_equal(p.server->send_window(up), 16 << 20);
  assert_int_equal(p.server->send_window(down), 16 << 20);
  // The server grows nothing: the client may send 256 KiB.
  assert_int_equal(p.client->send_window(up), 256 * 1024);
  const auto c = Headers(p.client_sent);
  expect_that(c[0].flags == kFlagSyn && c[0].length == (16 << 20) - 256 * 1024, "SYN with a delta of 16 MiB - 256 KiB");
  // The whole 16 MiB fits in the client's window without an update.
  const std::string payload = Pattern(16 << 20, 3);
  auto n = p.server->Write(down, payload);
  assert_int_equal(*n, payload.size());
  assert_true(p.Pump());
  assert_true(p.client_events.data[down] == payload);
}

void test_half_close_both_ways(void**) {
  Pair p;
  const uint32_t id = OpenOk(*p.client);
  WriteAll(p, *p.client, id, "request");
  assert_status_ok(p.client->Close(id));
  assert_status_ok(p.client->Close(id));  // twice is harmless
  assert_true(p.Pump());
  assert_true(p.server_events.Heard("fin 1"));
  auto late = p.client->Write(id, "more");
  assert_int_equal(static_cast<int>(late.status().code()), static_cast<int>(StatusCode::kFailedPrecondition));
  // The other direction still flows.
  WriteAll(p, *p.server, id, "response");
  assert_true(p.client_events.data[id] == "response");
  assert_true(p.client->IsOpen(id) && p.server->IsOpen(id));
  assert_status_ok(p.server->Close(id));
  assert_true(p.Pump());
  assert_true(p.client_events.Heard("fin 1"));
  // Closed both ways: gone on both sides.
  assert_false(p.client->IsOpen(id));
  assert_false(p.server->IsOpen(id));
  assert_int_equal(p.client->open_streams(), 0);
}

void test_fin_on_data_frame_after_its_payload(void**) {
  Pair p;
  const uint32_t id = OpenOk(*p.client);
  assert_true(p.Pump());
  std::string frame = praefect::yamux::testing::Frame(FrameType::kData, kFlagFin, id, 3, "end");
  assert_status_ok(p.client->Receive(frame));
  assert_true(p.client_events.data[id] == "end");
  assert_true(p.client_events.events.back() == "fin 1");
}

void test_reset_by_owner(void**) {
  Pair p;
  const uint32_t id = OpenOk(*p.client);
  WriteAll(p, *p.client, id, "abc");
  // The server writes before it hears of the reset: the client drops it.
  auto n = p.server->Write(id, "in flight");
  assert_int_equal(*n, 9);
  assert_status_ok(p.client->Reset(id));
  assert_false(p.client->IsOpen(id));
  assert_true(p.Pump());
  assert_status_ok(p.client->error());
  assert_true(p.client_events.data[id].empty());
  assert_true(p.server_events.Heard("reset 1"));
  assert_false(p.server->IsOpen(id));
  auto after = p.server->Write(id, "x");
  assert_int_equal(static_cast<int>(after.status().code()), static_cast<int>(StatusCode::kFailedPrecondition));
  assert_status_ok(p.client->Reset(id));  // already gone: harmless
  // The session goes on.
  const uint32_t next = OpenOk(*p.client);
  WriteAll(p, *p.client, next, "still fine");
  assert_true(p.server_events.data[next] == "still fine");
}

void test_backlog_refusal(void**) {
  SessionOptions server;
  server.accept_backlog = 2;
  Pair p(SessionOptions{}, server);
  p.server_events.auto_accept = false;
  const uint32_t a = OpenOk(*p.client), b = OpenOk(*p.client), c = OpenOk(*p.client);
  WriteAll(p, *p.client, a, "a");  // data before the accept is delivered
  assert_int_equal(p.server->pending_accepts(), 2);
  assert_int_equal(p.server->refused_streams(), 1);
  expect_that(p.client_events.Heard("reset " + std::to_string(c)), "the third open refused with RST");
  assert_false(p.client_events.Heard("reset " + std::to_string(b)));
  assert_true(p.server_events.data[a] == "a");
  auto not_acked = p.client->Write(c, "x");
  assert_false(not_acked.ok());
  // Accepting makes room again.
  assert_status_ok(p.server->Accept(a));
  assert_true(p.Pump());
  assert_true(p.client_events.Heard("acked 1"));
  const uint32_t d = OpenOk(*p.client);
  assert_true(p.Pump());
  assert_true(p.server_events.Heard("opened " + std::to_string(d)));
  assert_int_equal(p.server->refused_streams(), 1);
  // A second Accept is the owner's mistake.
  auto again = p.server->Accept(a);
  assert_int_equal(static_cast<int>(again.code()), static_cast<int>(StatusCode::kFailedPrecondition));
  // Writing to a waiting stream accepts it.
  WriteAll(p, *p.server, b, "implicit");
  assert_true(p.client_events.Heard("acked 3"));
  assert_int_equal(p.server->pending_accepts(), 1);
}

void test_open_waits_for_acks_beyond_backlog(void**) {
  SessionOptions client;
  client.accept_backlog = 2;
  Pair p(client, SessionOptions{});
  p.server_events.auto_accept = false;
  OpenOk(*p.client);
  OpenOk(*p.client);
  auto third = p.client->Open();
  assert_int_equal(static_cast<int>(third.status().code()), static_cast<int>(StatusCode::kResourceExhausted));
  assert_true(p.Pump());
  assert_status_ok(p.server->Accept(1));
  assert_true(p.Pump());
  assert_int_equal(OpenOk(*p.client), 5);
  // A stream reset before its ACK gives its place back too.
  assert_status_ok(p.client->Reset(3));
  assert_int_equal(OpenOk(*p.client), 7);
}

void test_ping(void**) {
  Pair p;
  auto a = p.client->Ping();
  auto b = p.server->Ping();
  assert_status_ok(a.status());
  assert_true(p.Pump());
  assert_true(p.client_events.Heard("pong " + std::to_string(*a)));
  assert_true(p.server_events.Heard("pong " + std::to_string(*b)));
  // An answer to no ping of ours is ignored, as hashicorp/yamux does.
  assert_status_ok(p.client->Receive(praefect::yamux::testing::Frame(FrameType::kPing, kFlagAck, 0, 77)));
  assert_false(p.client_events.Heard("pong 77"));
  for (size_t i = 0; i < Session::kMaxPingsInFlight; ++i) assert_status_ok(p.client->Ping().status());
  assert_int_equal(static_cast<int>(p.client->Ping().status().code()),
                   static_cast<int>(StatusCode::kResourceExhausted));
}

void test_goaway_normal(void**) {
  Pair p;
  const uint32_t open = OpenOk(*p.client);
  assert_true(p.Pump());
  assert_status_ok(p.server->GoAway());
  // An open the client sent before it heard the GoAway is refused.
  const uint32_t crossing = OpenOk(*p.client);
  assert_true(p.Pump());
  assert_true(p.client_events.Heard("goaway 0"));
  assert_true(p.client_events.Heard("reset " + std::to_string(crossing)));
  assert_true(p.client->peer_went_away());
  auto refused = p.client->Open();
  assert_int_equal(static_cast<int>(refused.status().code()), static_cast<int>(StatusCode::kFailedPrecondition));
  // The streams already open go on, both ways.
  WriteAll(p, *p.client, open, "still");
  WriteAll(p, *p.server, open, "here");
  assert_true(p.server_events.data[open] == "still" && p.client_events.data[open] == "here");
  // The side that sent GoAway may still open.
  const uint32_t late = OpenOk(*p.server);
  assert_true(p.Pump());
  assert_true(p.client_events.Heard("opened " + std::to_string(late)));
  assert_status_ok(p.client->error());
  assert_status_ok(p.server->error());
}

void test_goaway_with_error_ends_session(void**) {
  Pair p;
  assert_status_ok(p.client->GoAway(GoAwayCode::kInternalError));
  assert_false(p.Pump());
  assert_true(p.server_events.Heard("goaway 2"));
  const auto& err = p.server->error();
  assert_int_equal(static_cast<int>(err.code()), static_cast<int>(StatusCode::kUnavailable));
  expect_that(err.message() == "yamux session with client: the peer ended the session with GoAway (internal error): "
                               "it failed on its side",
              "the reason, got: " + err.message());
  assert_true(p.server->Open().status().message() == err.message());
  // Nothing is sent back: the peer is leaving.
  assert_int_equal(p.server->output_size(), 0);
}

// A listener that resets the stream from inside OnData: the rest of the
// frame is dropped, the session goes on.
class ResetOnData : public praefect::yamux::testing::Recorder {
 public:
  void OnData(uint32_t id, std::string_view bytes) override {
    Recorder::OnData(id, bytes);
    if (session->Reset(id).ok()) events.push_back("reset sent");
  }
};

void test_callbacks_may_act_on_the_session(void**) {
  SessionOptions options;
  options.role = praefect::yamux::Role::kServer;
  ResetOnData listener;
  auto server = std::move(Session::Create(options, &listener)).value();
  listener.session = server.get();
  std::string bytes = praefect::yamux::testing::Frame(FrameType::kWindowUpdate, kFlagSyn, 1, 0) +
                      praefect::yamux::testing::Frame(FrameType::kData, kFlagFin, 1, 10, "0123456789") +
                      praefect::yamux::testing::Frame(FrameType::kWindowUpdate, kFlagSyn, 3, 0);
  assert_status_ok(server->Receive(std::string_view(bytes).substr(0, 12 + 12 + 4)));
  assert_status_ok(server->Receive(std::string_view(bytes).substr(12 + 12 + 4)));
  assert_true(listener.data[1] == "0123");  // the rest dropped, and no FIN heard
  assert_false(listener.Heard("fin 1"));
  assert_true(listener.Heard("opened 3"));
  // Receive from a callback is refused.
  class Reentrant : public praefect::yamux::SessionListener {
   public:
    Session* session = nullptr;
    praefect::Status inner;
    void OnStreamOpened(uint32_t) override { inner = session->Receive("x"); }
  } reentrant;
  auto other = std::move(Session::Create(options, &reentrant)).value();
  reentrant.session = other.get();
  assert_status_ok(other->Receive(praefect::yamux::testing::Frame(FrameType::kWindowUpdate, kFlagSyn, 1, 0)));
  assert_int_equal(static_cast<int>(reentrant.inner.code()), static_cast<int>(StatusCode::kFailedPrecondition));
}

void test_byte_by_byte_same_as_whole(void**) {
  // One exchange recorded whole, then replayed into fresh sessions one
  // byte at a time: the same events, the same answers.
  Pair whole;
  whole.capture = true;
  const uint32_t id = OpenOk(*whole.client);
  const uint32_t back = OpenOk(*whole.server);
  const std::string payload = Pattern(600 * 1024, 9);
  WriteAll(whole, *whole.client, id, payload);
  WriteAll(whole, *whole.server, back, "node to praefect");
  assert_status_ok(whole.client->Ping().status());
  assert_status_ok(whole.client->Close(id));
  assert_status_ok(whole.server->Close(id));
  assert_true(whole.Pump());

  Pair bytes;
  bytes.piece = 1;
  const uint32_t id2 = OpenOk(*bytes.client);
  const uint32_t back2 = OpenOk(*bytes.server);
  assert_int_equal(id2, id);
  assert_int_equal(back2, back);
  WriteAll(bytes, *bytes.client, id2, payload);
  WriteAll(bytes, *bytes.server, back2, "node to praefect");
  assert_status_ok(bytes.client->Ping().status());
  assert_status_ok(bytes.client->Close(id2));
  assert_status_ok(bytes.server->Close(id2));
  assert_true(bytes.Pump());
  assert_true(bytes.server_events.data[id] == payload);
  assert_true(bytes.client_events.data[back] == "node to praefect");
  // Byte by byte, each frame's payload comes in one-byte OnData calls and
  // the same window updates follow; the events are the same.
  assert_true(bytes.server_events.events == whole.server_events.events);
  assert_true(bytes.client_events.events == whole.client_events.events);
}

void test_end_of_connection(void**) {
  Pair p;
  OpenOk(*p.client);
  assert_true(p.Pump());
  auto st = p.server->ReceiveEof();
  assert_int_equal(static_cast<int>(st.code()), static_cast<int>(StatusCode::kUnavailable));
  expect_that(st.message() == "yamux session with client: the peer closed the connection with 1 streams open",
              "got: " + st.message());
  assert_true(p.server_events.Heard("error " + st.message()));
  assert_true(p.server->Receive("more").message() == st.message());
  assert_true(p.server->Write(1, "x").status().message() == st.message());
}

void test_options_checked(void**) {
  praefect::yamux::SessionListener listener;
  SessionOptions small;
  small.max_stream_window = 65536;
  auto a = Session::Create(small, &listener);
  assert_false(a.ok());
  expect_that(a.status().message().find("262144") != std::string::npos, "names the minimum: " + a.status().message());
  SessionOptions none;
  none.accept_backlog = 0;
  assert_false(Session::Create(none, &listener).ok());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_opens_odd_server_accepts),
      cmocka_unit_test(test_server_opens_even),
      cmocka_unit_test(test_data_both_ways_on_streams_opened_both_ways),
      cmocka_unit_test(test_large_transfer_many_window_updates),
      cmocka_unit_test(test_concurrent_streams_both_ways),
      cmocka_unit_test(test_writer_waits_for_consumption),
      cmocka_unit_test(test_window_grows_to_configured_maximum),
      cmocka_unit_test(test_half_close_both_ways),
      cmocka_unit_test(test_fin_on_data_frame_after_its_payload),
      cmocka_unit_test(test_reset_by_owner),
      cmocka_unit_test(test_backlog_refusal),
      cmocka_unit_test(test_open_waits_for_acks_beyond_backlog),
      cmocka_unit_test(test_ping),
      cmocka_unit_test(test_goaway_normal),
      cmocka_unit_test(test_goaway_with_error_ends_session),
      cmocka_unit_test(test_callbacks_may_act_on_the_session),
      cmocka_unit_test(test_byte_by_byte_same_as_whole),
      cmocka_unit_test(test_end_of_connection),
      cmocka_unit_test(test_options_checked),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
