// The HTTP/2 codec with no sockets: a ClientSession and a ServerSession
// joined in memory, bytes shuttled between them by the test.
#include "http2/session.h"

#include <map>

#include "test_support.h"

using praefect::Status;
using namespace praefect::http2;

namespace {

// Records what a stream hears; optionally consumes DATA at once.
struct Recorder final : Stream::Listener {
  Stream* stream = nullptr;
  HeaderList headers, trailers;
  bool headers_end = false, ended = false, closed = false;
  uint32_t close_code = 99;
  std::string data;
  bool auto_consume = true;
  size_t unconsumed = 0;
  int drained = 0;
  std::function<void()> on_headers;

  void OnHeaders(HeaderList& h, bool end) override {
    headers = h;
    headers_end = end;
    if (on_headers) on_headers();
  }
  void OnData(const Slice& slice) override {
    const std::string_view bytes = slice.view();
    data.append(bytes);
    if (auto_consume) {
      stream->Consume(bytes.size());
    } else {
      unconsumed += bytes.size();
    }
  }
  void OnTrailers(const HeaderList& t) override { trailers = t; }
  void OnEndStream() override { ended = true; }
  void OnSendQueueDrained() override { ++drained; }
  void OnClosed(uint32_t code) override {
    closed = true;
    close_code = code;
    stream = nullptr;
  }
};

struct Side final : Session::Owner {
  std::vector<Stream*> new_streams;
  std::map<int32_t, std::unique_ptr<Recorder>> recorders;
  int goaways = 0;
  std::vector<bool> too_large;
  void OnNewStream(Stream* stream) override {
    new_streams.push_back(stream);
    too_large.push_back(stream->headers_too_large());
    auto r = std::make_unique<Recorder>();
    r->stream = stream;
    stream->set_listener(r.get());
    recorders[stream->id()] = std::move(r);
  }
  void OnWantWrite() override {}
  void OnGoAway(int32_t, uint32_t) override { ++goaways; }
};

struct Pair {
  Side client_side, server_side;
  std::unique_ptr<ClientSession> client;
  std::unique_ptr<ServerSession> server;
  explicit Pair(SessionOptions options = SessionOptions()) : Pair(options, options) {}
  Pair(SessionOptions client_options, SessionOptions server_options) {
    auto c = ClientSession::Create(&client_side, client_options);
    auto s = ServerSession::Create(&server_side, server_options);
    assert_status_ok(c.status());
    assert_status_ok(s.status());
    client = std::move(*c);
    server = std::move(*s);
  }
  // Moves bytes both ways until neither side has anything to send.
  void Pump() {
    for (int round = 0; round < 10000; ++round) {
      ByteQueue c2s, s2c;
      client->Produce(&c2s, 1 << 20);
      server->Produce(&s2c, 1 << 20);
      if (c2s.empty() && s2c.empty()) return;
      // Each side's input arrives in a block, as from a Connection, so
      // that DATA is passed on by reference.
      auto deliver = [](ByteQueue& q, Session* to) {
        if (q.empty()) return;
        BlockRef block = BlockRef::Take(Block::Adopt(q.Copy(q.size())));
        q.Clear();
        assert_status_ok(to->Receive(Slice(block.get(), block->data(), block->used())));
      };
      deliver(c2s, server.get());
      deliver(s2c, client.get());
    }
    fail_msg("the sessions never went quiet");
  }
};

HeaderList Request() {
  return {{":method", "POST"}, {":scheme", "http"}, {":path", "/pkg.Svc/M"}, {":authority", "x"},
          {"content-type", "application/grpc"}, {"te", "trailers"}, {"x-custom", "v"}};
}

void test_request_response_trailers(void**) {
  Recorder up;  // outlives the sessions, which tell it when they die
  Pair p;
  Status why;
  Stream* cs = p.client->OpenStream(Request(), false, &up, &why);
  assert_non_null(cs);
  up.stream = cs;
  cs->SendData("hello");
  cs->EndStream();
  p.Pump();
  assert_int_equal(p.server_side.new_streams.size(), 1);
  Recorder& down = *p.server_side.recorders.begin()->second;
  expect_that(*FindHeader(down.headers, ":path") == "/pkg.Svc/M" && *FindHeader(down.headers, "x-custom") == "v",
              "request headers seen by the server");
  expect_that(down.data == "hello" && down.ended, "request body and end");
  Stream* ss = down.stream;
  ss->SubmitResponse({{":status", "200"}, {"content-type", "application/grpc"}, {"x-h", "1"}}, false);
  ss->SendData(std::string(300000, 'r'));
  ss->SendTrailers({{"grpc-status", "0"}, {"x-t", "2"}});
  p.Pump();
  expect_that(*FindHeader(up.headers, ":status") == "200" && *FindHeader(up.headers, "x-h") == "1", "response headers");
  expect_that(up.data.size() == 300000, "the 300000-byte body, got " + std::to_string(up.data.size()));
  expect_that(up.trailers.size() == 2 && *FindHeader(up.trailers, "grpc-status") == "0", "trailers");
  expect_that(up.ended && up.closed && up.close_code == kNoError, "closed without error");
  expect_that(down.closed && down.close_code == kNoError, "the server stream closed without error");
}

void test_trailers_only_and_reset_of_unfinished_request(void**) {
  Recorder up;
  Pair p;
  Status why;
  Stream* cs = p.client->OpenStream(Request(), false, &up, &why);
  up.stream = cs;
  cs->SendData("partial");
  p.Pump();
  Recorder& down = *p.server_side.recorders.begin()->second;
  down.stream->SendTrailers({{":status", "200"}, {"content-type", "application/grpc"}, {"grpc-status", "16"}});
  p.Pump();
  expect_that(up.headers_end && *FindHeader(up.headers, "grpc-status") == "16", "a trailers-only answer");
  // The request was not finished: the server told the client to stop.
  expect_that(up.closed, "the client stream closed");
  expect_that(down.closed, "the server stream closed");
}

void test_flow_control_waits_for_consume(void**) {
  SessionOptions o;
  o.initial_stream_window = 16384;
  Recorder up;
  Pair p(o);
  Status why;
  Stream* cs = p.client->OpenStream(Request(), false, &up, &why);
  up.stream = cs;
  p.Pump();
  Recorder& down = *p.server_side.recorders.begin()->second;
  down.auto_consume = false;
  cs->SendData(std::string(100000, 'x'));
  p.Pump();
  expect_that(down.data.size() == 16384, "only the window's worth arrives, got " + std::to_string(down.data.size()));
  expect_that(cs->queued() == 100000 - 16384, "the rest waits in the sender's queue");
  down.stream->Consume(down.data.size());
  p.Pump();
  expect_that(down.data.size() == 32768, "consuming reopens the window by as much");
  down.auto_consume = true;
  down.stream->Consume(16384);
  p.Pump();
  expect_that(down.data.size() == 100000 && cs->queued() == 0, "all of it once consumed");
  expect_that(up.drained >= 1, "the sender heard its queue drained");
}

void test_client_reset_reaches_server(void**) {
  Recorder up;
  Pair p;
  Status why;
  Stream* cs = p.client->OpenStream(Request(), false, &up, &why);
  up.stream = cs;
  cs->SendData("x");
  p.Pump();
  cs->Reset(kCancel);
  p.Pump();
  Recorder& down = *p.server_side.recorders.begin()->second;
  expect_that(down.closed && down.close_code == kCancel, "the server stream closed with CANCEL");
  expect_that(up.closed && up.close_code == kCancel, "so did the client's");
}

void test_oversized_headers_flagged(void**) {
  SessionOptions o;
  o.max_header_list_bytes = 1024;
  Recorder up;
  Pair p(SessionOptions(), o);  // a client with room to send what the server refuses
  HeaderList big = Request();
  big.push_back({"x-big", std::string(4000, 'b')});
  big.push_back({"x-after", "a"});
  Status why;
  Stream* cs = p.client->OpenStream(big, true, &up, &why);
  assert_non_null(cs);
  p.Pump();
  assert_int_equal(p.server_side.new_streams.size(), 1);
  expect_that(p.server_side.too_large.at(0), "the stream is flagged as over the limit");
  const HeaderList& seen = p.server_side.recorders.begin()->second->headers;
  expect_that(FindHeader(seen, "x-big") == nullptr && FindHeader(seen, "x-after") == nullptr,
              "nothing past the limit reaches the listener");
}

void test_goaway_heard(void**) {
  Recorder up;
  Pair p;
  p.Pump();
  p.server->GoAway(kNoError, "bye");
  p.Pump();
  expect_that(p.client_side.goaways == 1, "the client heard GOAWAY");
  Status why;
  Stream* cs = p.client->OpenStream(Request(), true, &up, &why);
  expect_that(cs == nullptr && !why.ok(), "no new stream after GOAWAY: " + why.ToString());
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_response_trailers),
      cmocka_unit_test(test_trailers_only_and_reset_of_unfinished_request),
      cmocka_unit_test(test_flow_control_waits_for_consume),
      cmocka_unit_test(test_client_reset_reaches_server),
      cmocka_unit_test(test_oversized_headers_flagged),
      cmocka_unit_test(test_goaway_heard),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
