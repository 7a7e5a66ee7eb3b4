// Flow control: a slow reader slows the writer through the proxy, and the
// proxy holds at most one message per direction of a call.

#include <chrono>
#include <string>
#include <thread>

#include "plane_harness.h"
#include "test_support.h"

using namespace praefect::http2::testing;

namespace {

constexpr int64_t kMiB = 1 << 20;

void test_slow_reader_bounds_download(void**) {
  Fixture f;
  constexpr int kMessages = 256;
  BlockingCall call(f.ProxyChannel(), "/test.Backend/Stream");
  expect_that(call.Write(std::to_string(kMessages) + " " + std::to_string(kMiB)), "write the request");
  call.WritesDone();
  int received = 0;
  int64_t max_ahead = 0;
  while (auto m = call.Read()) {
    if (m->size() != static_cast<size_t>(kMiB) || (*m)[0] != static_cast<char>('a' + received % 26) ||
        m->back() != (*m)[0]) {
      fail_msg("message %d is not the backend's", received);
    }
    ++received;
    max_ahead = std::max(max_ahead, f.backend->StreamSent() - received);
    // A deliberately slow reader: the backend must wait for it.
    if (received % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  grpc::Status st = call.Finish();
  expect_that(st.ok(), "the stream to end OK, got " + st.error_message());
  expect_that(received == kMessages, "all " + std::to_string(kMessages) + " MiB, got " + std::to_string(received));

  const int64_t held = f.server->stats().max_bytes_held.load();
  fprintf(stderr, "download: the data plane held at most %lld bytes; backend ahead of the reader by at most %lld\n",
          (long long)held, (long long)max_ahead);
  // Bytes wait in the plane only up to forward_high_water per direction
  // plus what the streams' queues took: far below one 1 MiB message.
  expect_that(held <= 2 * 256 * 1024 + 64 * 1024,
              "at most about two high-water marks held by the data plane, saw " + std::to_string(held));
  // Without backpressure through the proxy the backend would run all 256
  // MiB ahead of this reader; with it, only what the HTTP/2 windows of the
  // two hops hold.
  expect_that(max_ahead < 64, "the backend to stay within 64 MiB of the slow reader, it was " +
                                  std::to_string(max_ahead) + " MiB ahead");
  expect_that(Eventually([&] { return f.server->stats().bytes_held.load() == 0; }), "nothing left buffered");
}

void test_upload_holds_one_message(void**) {
  Fixture f;
  constexpr int kMessages = 64;
  BlockingCall call(f.ProxyChannel(), "/test.Backend/Count");
  const std::string chunk(kMiB, 'u');
  for (int i = 0; i < kMessages; ++i) {
    if (!call.Write(chunk)) fail_msg("write %d failed", i);
  }
  call.WritesDone();
  auto answer = call.Read();
  grpc::Status st = call.Finish();
  expect_that(st.ok(), "OK, got " + st.error_message());
  expect_that(answer == std::optional<std::string>(std::to_string(kMessages) + " " + std::to_string(kMessages * kMiB)),
              "the backend to receive every byte");
  // The first message is held whole while the Director decides (1 MiB
  // here); besides it, at most the admitted window and the high-water marks.
  const int64_t held = f.server->stats().max_bytes_held.load();
  fprintf(stderr, "upload: the data plane held at most %lld bytes\n", (long long)held);
  expect_that(held <= kMiB + 5 + kMiB + 2 * 256 * 1024,
              "at most the first message, a window and two high-water marks held, saw " + std::to_string(held));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slow_reader_bounds_download),
      cmocka_unit_test(test_upload_holds_one_message),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
