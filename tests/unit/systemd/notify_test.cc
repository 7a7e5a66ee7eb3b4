// sd_notify messages as a service manager receives them: the test binds an
// AF_UNIX datagram socket and points $NOTIFY_SOCKET at it.
#include "systemd/notify.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "test_support.h"

using namespace praefect::systemd;

namespace {

struct FakeManager {
  FakeManager() {
    char dir_template[] = "/tmp/praefect-notify-XXXXXX";
    dir = mkdtemp(dir_template);
    path = dir + "/notify";
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr {};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    assert_int_equal(bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0);
    setenv("NOTIFY_SOCKET", path.c_str(), 1);
  }
  ~FakeManager() {
    unsetenv("NOTIFY_SOCKET");
    close(fd);
    unlink(path.c_str());
    rmdir(dir.c_str());
  }
  // The next datagram, or "" after a second without one.
  std::string Receive() {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) return "";
    char buf[4096];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  std::string dir;
  std::string path;
  int fd = -1;
};

}  // namespace

static void test_without_notify_socket_nothing_is_sent(void**) {
  unsetenv("NOTIFY_SOCKET");
  setenv("WATCHDOG_USEC", "1000000", 1);
  assert_false(NotifyEnabled());
  assert_false(NotifyReady());
  assert_false(NotifyStatus("x"));
  assert_false(WatchdogInterval().has_value());
  unsetenv("WATCHDOG_USEC");
}

static void test_messages_reach_the_manager(void**) {
  FakeManager manager;
  assert_true(NotifyEnabled());
  assert_true(NotifyReady());
  assert_string_equal(manager.Receive().c_str(), "READY=1");
  assert_true(NotifyStopping());
  assert_string_equal(manager.Receive().c_str(), "STOPPING=1");
  assert_true(NotifyWatchdog());
  assert_string_equal(manager.Receive().c_str(), "WATCHDOG=1");
  assert_true(NotifyExtendTimeout(std::chrono::seconds(15)));
  assert_string_equal(manager.Receive().c_str(), "EXTEND_TIMEOUT_USEC=15000000");
  assert_true(NotifyStatus("3/3 nodes healthy\nsecond line"));
  assert_string_equal(manager.Receive().c_str(), "STATUS=3/3 nodes healthy second line");
}

static void test_reloading_carries_the_monotonic_clock(void**) {
  FakeManager manager;
  const auto before = MonotonicNow();
  assert_true(NotifyReloading());
  const auto after = MonotonicNow();
  std::string msg = manager.Receive();
  const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  expect_that(msg.rfind(prefix, 0) == 0, "RELOADING=1 then MONOTONIC_USEC, got: " + msg);
  long long usec = std::stoll(msg.substr(prefix.size()));
  expect_that(usec >= before.count() && usec <= after.count(),
              "MONOTONIC_USEC " + std::to_string(usec) + " within [" + std::to_string(before.count()) + ", " +
                  std::to_string(after.count()) + "]");
}

static void test_watchdog_only_for_our_pid(void**) {
  FakeManager manager;
  unsetenv("WATCHDOG_PID");
  setenv("WATCHDOG_USEC", "4000000", 1);
  auto interval = WatchdogInterval();
  assert_true(interval.has_value());
  assert_int_equal(interval->count(), 4000000);

  setenv("WATCHDOG_PID", std::to_string(getpid()).c_str(), 1);
  assert_true(WatchdogInterval().has_value());

  // Meant for another process (a wrapper that exec'd us would have set ours).
  setenv("WATCHDOG_PID", std::to_string(getpid() + 1).c_str(), 1);
  assert_false(WatchdogInterval().has_value());

  unsetenv("WATCHDOG_PID");
  setenv("WATCHDOG_USEC", "nonsense", 1);
  assert_false(WatchdogInterval().has_value());
  unsetenv("WATCHDOG_USEC");
  assert_false(WatchdogInterval().has_value());
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_without_notify_socket_nothing_is_sent),
      cmocka_unit_test(test_messages_reach_the_manager),
      cmocka_unit_test(test_reloading_carries_the_monotonic_clock),
      cmocka_unit_test(test_watchdog_only_for_our_pid),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
