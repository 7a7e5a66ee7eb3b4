// The data plane's event loop: timers in order and cancellable, posts from
// other threads run on the loop in order, readiness reaches handlers,
// objects deleted soon outlive the batch that may still name them.
#include "http2/event_loop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.h"

using praefect::http2::EventLoop;
using praefect::http2::IoHandler;
using praefect::http2::LoopGroup;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<EventLoop> NewLoop() {
  auto loop = EventLoop::Create();
  assert_status_ok(loop.status());
  return std::move(loop).value();
}

void test_timers_run_in_order_and_cancel(void**) {
  auto loop = NewLoop();
  std::vector<int> order;
  loop->AddTimer(30ms, [&] { order.push_back(3); });
  loop->AddTimer(10ms, [&] { order.push_back(1); });
  auto cancelled = loop->AddTimer(20ms, [&] { order.push_back(99); });
  loop->AddTimer(20ms, [&] { order.push_back(2); });
  loop->CancelTimer(cancelled);
  loop->AddTimer(40ms, [&] { loop->Stop(); });
  auto start = EventLoop::Clock::now();
  loop->Run();
  expect_that(order == std::vector<int>({1, 2, 3}), "timers in deadline order, the cancelled one never");
  expect_that(EventLoop::Clock::now() - start >= 40ms, "Run waited for the last timer");
}

void test_posts_from_other_threads_run_in_order_on_the_loop(void**) {
  auto loop = NewLoop();
  std::thread runner([&] { loop->Run(); });
  std::vector<int> seen;
  std::atomic<bool> on_loop{true};
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  for (int i = 0; i < 1000; ++i) {
    loop->Post([&, i] {
      if (!loop->InLoopThread()) on_loop = false;
      seen.push_back(i);
      if (i == 999) {
        std::lock_guard lock(mu);
        done = true;
        cv.notify_all();
      }
    });
  }
  {
    std::unique_lock lock(mu);
    expect_that(cv.wait_for(lock, 5s, [&] { return done; }), "the posts ran");
  }
  loop->Stop();
  runner.join();
  expect_that(on_loop.load(), "every post ran on the loop's thread");
  bool ordered = seen.size() == 1000;
  for (size_t i = 0; ordered && i < seen.size(); ++i) ordered = seen[i] == static_cast<int>(i);
  expect_that(ordered, "posts from one thread in order");
}

struct Reader final : IoHandler {
  int fd = -1;
  std::string got;
  EventLoop* loop = nullptr;
  void OnIoEvent(uint32_t events) override {
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (n == 0 || (events & EPOLLHUP)) loop->Stop();
  }
};

void test_readiness_reaches_the_handler(void**) {
  auto loop = NewLoop();
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  Reader reader;
  reader.fd = sv[0];
  reader.loop = loop.get();
  assert_status_ok(loop->Add(sv[0], EPOLLIN, &reader));
  std::thread writer([&] {
    (void)!write(sv[1], "hello ", 6);
    std::this_thread::sleep_for(5ms);
    (void)!write(sv[1], "world", 5);
    close(sv[1]);
  });
  loop->Run();
  writer.join();
  loop->Remove(sv[0]);
  close(sv[0]);
  assert_string_equal(reader.got.c_str(), "hello world");
}

struct Counted {
  explicit Counted(int* alive) : alive_(alive) { ++*alive_; }
  ~Counted() { --*alive_; }
  int* alive_;
};

void test_delete_soon_waits_for_the_batch(void**) {
  auto loop = NewLoop();
  int alive = 0;
  loop->Post([&] {
    loop->DeleteSoon(std::make_unique<Counted>(&alive));
    expect_that(alive == 1, "still alive within the batch");
    loop->Post([&] {
      expect_that(alive == 0, "deleted after the batch");
      loop->Stop();
    });
  });
  loop->Run();
  assert_int_equal(alive, 0);
}

void test_group_runs_on_all(void**) {
  auto group = LoopGroup::Create(3);
  assert_status_ok(group.status());
  std::mutex mu;
  std::vector<std::thread::id> ids;
  (*group)->RunOnAll([&](EventLoop& loop) {
    expect_that(loop.InLoopThread(), "on the loop's own thread");
    std::lock_guard lock(mu);
    ids.push_back(std::this_thread::get_id());
  });
  expect_that(ids.size() == 3 && ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "three threads");
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timers_run_in_order_and_cancel),
      cmocka_unit_test(test_posts_from_other_threads_run_in_order_on_the_loop),
      cmocka_unit_test(test_readiness_reaches_the_handler),
      cmocka_unit_test(test_delete_soon_waits_for_the_batch),
      cmocka_unit_test(test_group_runs_on_all),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
