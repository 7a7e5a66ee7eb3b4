#include "systemd/listen_fds.h"

#include <sys/socket.h>

#include "test_support.h"

using praefect::StatusCode;
using praefect::systemd::ListenSockets;
using praefect::systemd::MatchListenFds;
using praefect::systemd::PassedFd;

namespace {

PassedFd Fd(int fd, const char* name, int family = AF_INET, bool listening = true) {
  return PassedFd{fd, name, family, listening};
}

void ExpectError(const std::vector<PassedFd>& fds, const char* fragment) {
  auto got = MatchListenFds(fds);
  if (got.ok()) fail_msg("matched, want an error mentioning \"%s\"", fragment);
  expect_that(got.status().code() == StatusCode::kFailedPrecondition, "FAILED_PRECONDITION: " + got.status().ToString());
  expect_that(got.status().message().find(fragment) != std::string::npos,
              "\"" + got.status().message() + "\" mentions \"" + fragment + "\"");
}

}  // namespace

static void test_nothing_passed(void**) {
  auto got = MatchListenFds({});
  assert_status_ok(got.status());
  assert_false(got->any());
}

// Roles follow the names, whatever order systemd passes them in.
static void test_by_name_not_position(void**) {
  auto got = MatchListenFds({Fd(3, "praefect-metrics"), Fd(4, "praefect-tls"), Fd(5, "praefect", AF_INET6)});
  assert_status_ok(got.status());
  assert_int_equal(got->metrics, 3);
  assert_int_equal(got->tls, 4);
  assert_int_equal(got->plain_inet, 5);
  assert_int_equal(got->plain_unix, -1);
}

// One praefect.socket unit may carry a TCP and a unix ListenStream= line.
static void test_praefect_name_tcp_and_unix(void**) {
  auto got = MatchListenFds({Fd(3, "praefect", AF_UNIX), Fd(4, "praefect", AF_INET)});
  assert_status_ok(got.status());
  assert_int_equal(got->plain_unix, 3);
  assert_int_equal(got->plain_inet, 4);
  assert_int_equal(got->tls, -1);
  assert_int_equal(got->metrics, -1);
}

static void test_unknown_names(void**) {
  // Unnamed (systemd-socket-activate without --fdname, or LISTEN_FDNAMES unset).
  ExpectError({Fd(3, "unknown")}, "fd 3 named \"unknown\" has a name praefect does not know");
  // FileDescriptorName= forgotten: systemd names the fd after its unit.
  ExpectError({Fd(3, "praefect"), Fd(4, "praefect.socket")},
              "fd 4 named \"praefect.socket\" has a name praefect does not know: expected \"praefect\" (gRPC), "
              "\"praefect-tls\" (gRPC over TLS) or \"praefect-metrics\" (Prometheus metrics). Set "
              "FileDescriptorName=");
  ExpectError({Fd(3, "Praefect")}, "named \"Praefect\"");  // names are case-sensitive, as systemd's
}

static void test_one_socket_per_name(void**) {
  ExpectError({Fd(3, "praefect-tls"), Fd(4, "praefect-tls")}, "fd 4 named \"praefect-tls\" is a second TLS socket");
  ExpectError({Fd(3, "praefect-metrics"), Fd(4, "praefect-metrics")}, "is a second metrics socket");
  ExpectError({Fd(3, "praefect"), Fd(4, "praefect", AF_INET6)}, "is a second TCP socket");
  ExpectError({Fd(3, "praefect", AF_UNIX), Fd(4, "praefect", AF_UNIX)}, "is a second unix socket");
}

static void test_not_a_listening_stream(void**) {
  ExpectError({Fd(3, "praefect", AF_INET, false)}, "is not a listening stream socket: use ListenStream=");
  ExpectError({Fd(3, "praefect", AF_NETLINK)}, "praefect serves gRPC on TCP (IPv4, IPv6) and unix sockets only");
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_nothing_passed),
      cmocka_unit_test(test_by_name_not_position),
      cmocka_unit_test(test_praefect_name_tcp_and_unix),
      cmocka_unit_test(test_unknown_names),
      cmocka_unit_test(test_one_socket_per_name),
      cmocka_unit_test(test_not_a_listening_stream),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
