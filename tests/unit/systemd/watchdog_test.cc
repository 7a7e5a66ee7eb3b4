// The watchdog thread: pings at half the interval, only while the liveness
// check passes.
#include "systemd/watchdog.h"

#include <atomic>
#include <chrono>
#include <thread>

#include "test_support.h"

using namespace praefect::systemd;
using namespace std::chrono_literals;

static void test_pings_at_half_the_interval(void**) {
  std::atomic<int> pings{0};
  Watchdog dog(200ms, [] { return true; }, [&] { pings++; });
  assert_int_equal(dog.period().count(), 100000);
  const auto start = std::chrono::steady_clock::now();
  dog.Start();
  while (pings.load() < 6 && std::chrono::steady_clock::now() - start < 10s) std::this_thread::sleep_for(5ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  dog.Stop();
  // The first ping at once, then one every 100 ms: 6 pings after ~500 ms.
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  fprintf(stderr, "6 pings after %lld ms (expected ~500)\n", static_cast<long long>(ms));
  expect_that(ms >= 450 && ms < 2000, "6 pings in 450..2000 ms, took " + std::to_string(ms));
}

static void test_no_ping_while_the_check_fails(void**) {
  std::atomic<bool> alive{false};
  std::atomic<int> checks{0};
  std::atomic<int> pings{0};
  Watchdog dog(20ms, [&] { checks++; return alive.load(); }, [&] { pings++; });
  dog.Start();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (checks.load() < 5 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  assert_true(checks.load() >= 5);
  assert_int_equal(pings.load(), 0);
  alive = true;
  while (pings.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  assert_true(pings.load() >= 2);
  dog.Stop();
  dog.Stop();  // idempotent
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pings_at_half_the_interval),
      cmocka_unit_test(test_no_ping_while_the_check_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
