// Connections over real sockets (socketpairs and loopback), plain and
// through a toy SecureLayer: bytes arrive intact and in order, output is
// queued and drained with OnSendable, the peer's end is seen, and listening
// and connecting work for TCP, unix sockets and names.
#include "http2/connection.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "http2/sockets.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusOr;
using praefect::http2::Connection;
using praefect::http2::EventLoop;
using praefect::http2::SecureLayer;
using praefect::http2::Slice;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<EventLoop> NewLoop() {
  auto loop = EventLoop::Create();
  assert_status_ok(loop.status());
  return std::move(loop).value();
}

// Sends `total` bytes of a pattern, only while the queue is short; records
// what comes back.
struct Peer final : Connection::Handler {
  Connection* conn = nullptr;
  std::string received;
  size_t to_send = 0;
  size_t sent = 0;
  size_t max_pending = 0;
  bool echo = false;
  bool closed = false;
  Status why;
  std::function<void()> on_progress;

  static char At(size_t i) { return static_cast<char>('a' + (i * 7 + i / 1000) % 26); }
  void Pump() {
    while (sent < to_send && conn->pending_output() < Connection::kLowWater) {
      std::string chunk;
      for (size_t n = std::min<size_t>(16384, to_send - sent); n > 0; --n) chunk += At(sent++);
      conn->Send(chunk);
    }
    max_pending = std::max(max_pending, conn->pending_output());
    conn->Flush();
  }
  void OnReceived(const Slice& slice) override {
    const std::string_view bytes = slice.view();
    received.append(bytes);
    if (echo) {
      conn->Send(bytes);
      conn->Flush();
    }
    if (on_progress) on_progress();
  }
  void OnSendable() override { Pump(); }
  void OnClosed(const Status& st) override {
    closed = true;
    why = st;
    if (on_progress) on_progress();
  }
};

void test_bytes_both_ways_with_backpressure(void**) {
  auto loop = NewLoop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  // Small kernel buffers, so that the queue really fills.
  int small = 16384;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  Connection a(loop.get(), sv[0], nullptr, "a");
  Connection b(loop.get(), sv[1], nullptr, "b");
  Peer pa, pb;
  pa.conn = &a;
  pb.conn = &b;
  pb.echo = true;
  const size_t total = 8 << 20;
  pa.to_send = total;
  pa.on_progress = [&] {
    if (pa.received.size() == total) loop->Stop();
  };
  assert_status_ok(a.Start(&pa));
  assert_status_ok(b.Start(&pb));
  loop->Post([&] { pa.Pump(); });
  loop->AddTimer(20s, [&] { loop->Stop(); });
  loop->Run();
  expect_that(pa.received.size() == total, "8 MiB echoed back, got " + std::to_string(pa.received.size()));
  bool intact = true;
  for (size_t i = 0; intact && i < pa.received.size(); ++i) intact = pa.received[i] == Peer::At(i);
  expect_that(intact, "every byte in order");
  expect_that(pa.max_pending < Connection::kLowWater + 16384 + 1,
              "the sender queued at most a chunk past the low-water mark, saw " + std::to_string(pa.max_pending));
}

void test_peer_end_and_close_after_flush(void**) {
  auto loop = NewLoop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Connection a(loop.get(), sv[0], nullptr, "a");
  Connection b(loop.get(), sv[1], nullptr, "b");
  Peer pa, pb;
  pa.conn = &a;
  pb.conn = &b;
  pb.on_progress = [&] {
    if (pb.closed) loop->Stop();
  };
  assert_status_ok(a.Start(&pa));
  assert_status_ok(b.Start(&pb));
  loop->Post([&] {
    a.Send(std::string(1 << 20, 'x'));
    a.CloseAfterFlush();
  });
  loop->AddTimer(10s, [&] { loop->Stop(); });
  loop->Run();
  expect_that(pb.received.size() == (1u << 20), "everything queued before the close arrived");
  expect_that(pb.closed && pb.why.ok(), "the peer's end is an orderly close: " + pb.why.ToString());
  expect_that(pa.closed && pa.why.ok() && a.closed(), "the closing side heard OnClosed(OK)");
}

// A toy cipher (XOR 0x5a, a byte of "handshake" first) that exercises the
// SecureLayer path: what the handler sends is transformed on the wire and
// restored for the peer's handler.
class XorLayer final : public SecureLayer {
 public:
  Status ReceiveCiphertext(std::string_view bytes) override {
    in_.append(bytes);
    return Status::Ok();
  }
  Status ReadPlaintext(std::string* out) override {
    size_t start = 0;
    if (!greeted_ && !in_.empty()) {
      if (in_[0] != 'H') return Status(praefect::StatusCode::kUnavailable, "bad greeting");
      greeted_ = true;
      start = 1;
    }
    for (size_t i = start; i < in_.size(); ++i) out->push_back(static_cast<char>(in_[i] ^ 0x5a));
    in_.clear();
    return Status::Ok();
  }
  Status SendPlaintext(std::string_view bytes) override {
    for (char c : bytes) pending_.push_back(static_cast<char>(c ^ 0x5a));
    return Status::Ok();
  }
  void TakeCiphertext(std::string* out) override {
    if (!hello_sent_) {
      out->push_back('H');
      hello_sent_ = true;
    }
    out->append(pending_);
    pending_.clear();
  }
  Status ReceiveEof() override { return Status::Ok(); }
  size_t buffered() const override { return pending_.size(); }
  bool peer_closed() const override { return false; }
  bool handshake_done() const override { return greeted_; }
  std::string_view alpn() const override { return "h2"; }

 private:
  std::string in_, pending_;
  bool greeted_ = false, hello_sent_ = false;
};

void test_secure_layer_path(void**) {
  auto loop = NewLoop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int raw_peer = dup(sv[1]);
  Connection a(loop.get(), sv[0], std::make_unique<XorLayer>(), "a");
  Connection b(loop.get(), sv[1], std::make_unique<XorLayer>(), "b");
  Peer pa, pb;
  pa.conn = &a;
  pb.conn = &b;
  pb.echo = true;
  pa.to_send = 300000;
  pa.on_progress = [&] {
    if (pa.received.size() == pa.to_send) loop->Stop();
  };
  assert_status_ok(a.Start(&pa));
  assert_status_ok(b.Start(&pb));
  loop->Post([&] { pa.Pump(); });
  loop->AddTimer(10s, [&] { loop->Stop(); });
  loop->Run();
  bool intact = pa.received.size() == pa.to_send;
  for (size_t i = 0; intact && i < pa.received.size(); ++i) intact = pa.received[i] == Peer::At(i);
  expect_that(intact, "the plaintext round trip through the layer is intact");
  close(raw_peer);
}

void test_listen_and_connect(void**) {
  auto group = praefect::http2::LoopGroup::Create(2);
  assert_status_ok(group.status());
  auto fd = praefect::http2::ListenTcp("127.0.0.1:0");
  assert_status_ok(fd.status());
  const int port = praefect::http2::BoundPort(*fd);
  std::atomic<int> accepted{0};
  std::mutex peers_mu;
  std::vector<std::string> peers;
  praefect::http2::Listener listener(*fd, "test", [&](EventLoop&, int c, const std::string& peer) {
    {
      std::lock_guard lock(peers_mu);
      peers.push_back(peer);
    }
    ++accepted;
    close(c);
  });
  assert_status_ok(listener.Start(group->get()));

  praefect::http2::Resolver resolver;
  auto connect = [&](praefect::http2::ConnectTarget target) {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<StatusOr<int>> result;
    std::unique_ptr<praefect::http2::ConnectAttempt> attempt;
    EventLoop& loop = (*group)->loop(0);
    loop.Post([&] {
      attempt = praefect::http2::Connect(&loop, &resolver, target, 5000ms, [&](StatusOr<int> r) {
        std::lock_guard lock(mu);
        result = std::move(r);
        cv.notify_all();
      });
    });
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return result.has_value(); });
    (*group)->RunOnAll([&](EventLoop& l) {
      if (&l == &loop) attempt.reset();
    });
    if (result && result->ok()) close(**result);
    return result.value_or(StatusOr<int>(praefect::Internal("no answer")));
  };
  praefect::http2::ConnectTarget numeric;
  numeric.host = "127.0.0.1";
  numeric.port = port;
  assert_status_ok(connect(numeric).status());
  praefect::http2::ConnectTarget named = numeric;
  named.host = "localhost";
  StatusOr<int> by_name = connect(named);
  // localhost may resolve to ::1 first, where nothing listens.
  expect_that(by_name.ok() || by_name.status().message().find("refused") != std::string::npos,
              "a name resolves and connects: " + by_name.status().ToString());
  for (int i = 0; i < 200 && accepted.load() < 1; ++i) std::this_thread::sleep_for(10ms);
  expect_that(accepted.load() >= 1, "the listener accepted");
  {
    std::lock_guard lock(peers_mu);
    expect_that(!peers.empty() && peers[0].rfind("127.0.0.1:", 0) == 0, "the peer's address is known");
  }

  listener.Stop();
  StatusOr<int> refused = connect(numeric);
  expect_that(!refused.ok() && refused.status().message().find("Connection refused") != std::string::npos &&
                  refused.status().message().find("127.0.0.1:" + std::to_string(port)) != std::string::npos,
              "a refused connection names the address: " + refused.status().ToString());
  praefect::http2::ConnectTarget nowhere;
  nowhere.host = "no-such-host.invalid";
  nowhere.port = 1;
  StatusOr<int> unresolved = connect(nowhere);
  expect_that(!unresolved.ok() && unresolved.status().message().find("no-such-host.invalid") != std::string::npos,
              "an unknown name is named: " + unresolved.status().ToString());

  // Unix sockets.
  std::string path = "/tmp/praefect-http2-test-" + std::to_string(getpid()) + ".sock";
  unlink(path.c_str());
  auto ufd = praefect::http2::ListenUnix(path);
  assert_status_ok(ufd.status());
  std::atomic<int> unix_accepted{0};
  praefect::http2::Listener ulistener(*ufd, "unix", [&](EventLoop&, int c, std::string) {
    ++unix_accepted;
    close(c);
  });
  assert_status_ok(ulistener.Start(group->get()));
  praefect::http2::ConnectTarget unix_target;
  unix_target.kind = praefect::http2::ConnectTarget::Kind::kUnix;
  unix_target.path = path;
  assert_status_ok(connect(unix_target).status());
  for (int i = 0; i < 200 && unix_accepted.load() < 1; ++i) std::this_thread::sleep_for(10ms);
  expect_that(unix_accepted.load() == 1, "the unix listener accepted");
  ulistener.Stop();
  unlink(path.c_str());
}

}  // namespace

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bytes_both_ways_with_backpressure),
      cmocka_unit_test(test_peer_end_and_close_after_flush),
      cmocka_unit_test(test_secure_layer_path),
      cmocka_unit_test(test_listen_and_connect),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
