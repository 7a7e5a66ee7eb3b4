// Flow control: a slow reader slows the writer through the proxy, and the
// proxy holds at most one message per direction of a call.

#include <chrono>
#include <string>
#include <thread>

#include "harness.h"
#include "test_support.h"

using namespace praefect::proxy::testing;

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

  auto stats = f.proxy->Stats();
  fprintf(stderr, "download: proxy held at most %lld messages, %lld bytes; backend ahead of the reader by at most %lld\n",
          (long long)stats.max_messages_buffered, (long long)stats.max_bytes_buffered, (long long)max_ahead);
  // One response and (briefly) the small request.
  expect_that(stats.max_messages_buffered <= 2, "at most 2 messages held by the proxy, saw " +
                                                    std::to_string(stats.max_messages_buffered));
  expect_that(stats.max_bytes_buffered <= kMiB + 64,
              "at most one 1 MiB message held by the proxy, saw " + std::to_string(stats.max_bytes_buffered));
  // Without backpressure through the proxy the backend would run all 256
  // MiB ahead of this reader; with it, only what the HTTP/2 windows of the
  // two hops hold.
  expect_that(max_ahead < 64, "the backend to stay within 64 MiB of the slow reader, it was " +
                                  std::to_string(max_ahead) + " MiB ahead");
  expect_that(Eventually([&] { return f.proxy->Stats().bytes_buffered == 0; }), "nothing left buffered");
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
  auto stats = f.proxy->Stats();
  expect_that(stats.max_messages_buffered <= 2, "at most 2 messages held, saw " + std::to_string(stats.max_messages_buffered));
  expect_that(stats.max_bytes_buffered <= kMiB + 64,
              "at most one 1 MiB message held, saw " + std::to_string(stats.max_bytes_buffered));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slow_reader_bounds_download),
      cmocka_unit_test(test_upload_holds_one_message),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
