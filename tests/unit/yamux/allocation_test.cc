// The data path allocates nothing per frame: once the two output buffers
// have grown, megabytes both ways (data, window updates, pings) take no
// heap allocation. Counted by replacing the global operator new in this
// test binary.
#include <cstdlib>
#include <new>
#include <string>

#include "yamux/session.h"
#include "yamux_harness.h"
#include "test_support.h"

namespace {
size_t allocations = 0;
bool counting = false;
}  // namespace

void* operator new(size_t n) {
  if (counting) ++allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }

using praefect::yamux::Role;
using praefect::yamux::Session;
using praefect::yamux::SessionListener;
using praefect::yamux::SessionOptions;

namespace {

// Consumes what arrives and counts it; records nothing else.
class Sink : public SessionListener {
 public:
  Session* session = nullptr;
  size_t received = 0;
  size_t pongs = 0;
  void OnStreamOpened(uint32_t id) override { (void)session->Accept(id); }
  void OnData(uint32_t id, std::string_view bytes) override {
    received += bytes.size();
    (void)session->Consume(id, bytes.size());
  }
  void OnPingAnswered(uint32_t) override { ++pongs; }
};

struct Wire {
  Sink client_sink, server_sink;
  std::unique_ptr<Session> client, server;
  std::string c2s, s2c;  // reused: TakeOutput swaps them with the sessions' buffers

  Wire() {
    SessionOptions c, s;
    c.role = Role::kClient;
    s.role = Role::kServer;
    client = std::move(Session::Create(c, &client_sink)).value();
    server = std::move(Session::Create(s, &server_sink)).value();
    client_sink.session = client.get();
    server_sink.session = server.get();
  }

  void Pump() {
    for (;;) {
      client->TakeOutput(&c2s);
      server->TakeOutput(&s2c);
      if (c2s.empty() && s2c.empty()) return;
      assert_status_ok(server->Receive(c2s));
      assert_status_ok(client->Receive(s2c));
      c2s.clear();
      s2c.clear();
    }
  }

  // Sends `total` bytes each way on stream `id`, in writes of `payload`.
  void Transfer(uint32_t id, std::string_view payload, size_t total) {
    size_t up = 0, down = 0;
    while (up < total || down < total) {
      if (up < total) up += *client->Write(id, payload.substr(0, std::min(payload.size(), total - up)));
      if (down < total) down += *server->Write(id, payload.substr(0, std::min(payload.size(), total - down)));
      Pump();
    }
  }
};

void test_no_allocation_per_frame(void**) {
  Wire w;
  const uint32_t id = *w.client->Open();
  w.Pump();
  const std::string payload = praefect::yamux::testing::Pattern(48 * 1024, 5);
  // Warm-up: the buffers grow to what a full window needs.
  w.Transfer(id, payload, 2 << 20);
  (void)w.client->Ping();
  (void)w.server->Ping();  // the list of pings in flight, once
  w.Pump();
  counting = true;
  w.Transfer(id, payload, 8 << 20);
  (void)w.client->Ping();
  (void)w.server->Ping();
  w.Pump();
  counting = false;
  assert_int_equal(w.client_sink.received, 10 << 20);
  assert_int_equal(w.server_sink.received, 10 << 20);
  assert_int_equal(w.client_sink.pongs, 2);
  assert_int_equal(w.server_sink.pongs, 2);
  expect_that(allocations == 0, std::to_string(allocations) + " allocations for 16 MiB of frames, expected none");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_no_allocation_per_frame),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
