// LocalStream, between a producer thread and a consumer standing in for
// the call's loop: the producer waits while more than the limit waits,
// one message always fits, Cancel frees a waiting producer, the finish
// comes after every message, and notifications are not repeated while one
// is pending.
#include "http2/local_stream.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::http2::LocalStream;

namespace {

template <typename Pred>
bool PollUntil(Pred pred) {
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       std::chrono::steady_clock::now() < deadline;) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

void ProducerWaitsForTheConsumer(void**) {
  LocalStream stream(100);
  std::atomic<int> notified{0};
  stream.SetNotify([&] { notified.fetch_add(1); });
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 10; ++i) {
      if (!stream.Push(std::string(45, static_cast<char>('a' + i)))) return;
      pushed.fetch_add(1);
    }
    stream.Finish(Status::Ok());
  });
  // 50 bytes each (45 and a 5-byte prefix): two fit in 100, the third waits.
  expect_that(PollUntil([&] { return pushed.load() == 2; }), "two messages pushed");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  assert_int_equal(pushed.load(), 2);
  assert_int_equal(notified.load(), 1);  // one notification while it is not taken

  std::string got;
  bool finished = false;
  while (!finished) {
    expect_that(PollUntil([&] { return notified.load() > 0; }), "a notification");
    notified.store(0);
    LocalStream::Taken t = stream.Take();
    for (const std::string& m : t.messages) {
      got += m.substr(0, 1);
      stream.Consumed(LocalStream::Cost(m));
    }
    finished = t.finished.has_value();
    if (finished) assert_true(t.finished->ok());
  }
  producer.join();
  assert_string_equal(got.c_str(), "abcdefghij");
}

void OneMessageLargerThanTheLimitFits(void**) {
  LocalStream stream(10);
  assert_true(stream.Push(std::string(1000, 'x')));  // nothing waits: it goes in
  std::atomic<bool> second{false};
  std::thread producer([&] {
    second = stream.Push("y");
    stream.Finish(Status::Ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  assert_false(second.load());  // waits for the first to be consumed
  LocalStream::Taken t = stream.Take();
  assert_int_equal(t.messages.size(), 1);
  stream.Consumed(LocalStream::Cost(t.messages[0]));
  producer.join();
  assert_true(second.load());
  t = stream.Take();
  assert_int_equal(t.messages.size(), 1);
  assert_true(t.finished.has_value());
}

void CancelFreesAWaitingProducer(void**) {
  LocalStream stream(10);
  assert_true(stream.Push(std::string(20, 'x')));
  std::atomic<int> result{-1};
  std::thread producer([&] {
    result = stream.Push("y") ? 1 : 0;
    stream.Finish(praefect::Cancelled("gone"));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  assert_int_equal(result.load(), -1);
  stream.Cancel();  // the client went away: nothing is consumed any more
  producer.join();
  assert_int_equal(result.load(), 0);
  assert_false(stream.Push("z"));
  LocalStream::Taken t = stream.Take();
  assert_true(t.finished.has_value());
  assert_int_equal(static_cast<int>(t.finished->code()), static_cast<int>(StatusCode::kCancelled));
}

void NotifyLateStillDelivers(void**) {
  // Messages and the finish before the call set its notification (the
  // route reaches the loop after the producer started).
  LocalStream stream(1000);
  assert_true(stream.Push("a"));
  stream.Finish(Status::Ok());
  int notified = 0;
  stream.SetNotify([&] { ++notified; });
  assert_int_equal(notified, 1);
  LocalStream::Taken t = stream.Take();
  assert_int_equal(t.messages.size(), 1);
  assert_true(t.finished.has_value());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ProducerWaitsForTheConsumer),
      cmocka_unit_test(OneMessageLargerThanTheLimitFits),
      cmocka_unit_test(CancelFreesAWaitingProducer),
      cmocka_unit_test(NotifyLateStillDelivers),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
