#include "metrics/exposer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "scrape.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;
using praefect::metrics::Exposer;
using praefect::metrics::Metrics;
using praefect::metrics::MetricsEndpoint;
using praefect::metrics::Options;
using praefect::metrics::testing::Body;
using praefect::metrics::testing::HasLine;
using praefect::metrics::testing::HttpGet;
using praefect::metrics::testing::RawHttp;

namespace {

void ExpectError(const Status& st, StatusCode code, const std::string& fragment) {
  expect_that(st.code() == code, "code " + std::to_string(static_cast<int>(code)) + ", got " + st.ToString());
  expect_that(st.message().find(fragment) != std::string::npos,
              "message mentioning \"" + fragment + "\", got \"" + st.message() + "\"");
}

std::vector<Exposer::Endpoint> Fixed(std::string body) {
  return {{"/metrics", [body] { return body; }}};
}

// A socket listening on 127.0.0.1 at a port the kernel picks; returns the fd
// and sets *port.
int ListenLoopback(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0);
  assert_int_equal(listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<struct sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

static void test_serves_metrics_on_ephemeral_port(void**) {
  Metrics metrics(Options{});
  metrics.MethodTypeCounter("mutator").Increment();
  StatusOr<std::unique_ptr<Exposer>> exposer = Exposer::Listen("127.0.0.1:0", {MetricsEndpoint(metrics)});
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  assert_true(port > 0);

  std::string response = HttpGet(port, "/metrics");
  expect_that(response.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "200 OK, got:\n" + response);
  expect_that(response.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos,
              "Prometheus text content type, got:\n" + response);
  std::string body = Body(response);
  expect_that(HasLine(body, "gitaly_praefect_method_types{method_type=\"mutator\"} 1"), "counter in:\n" + body);
  expect_that(response.find("Content-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos,
              "Content-Length matching the body, got:\n" + response);

  // A later scrape sees later values; a query string is ignored.
  metrics.MethodTypeCounter("mutator").Increment();
  body = Body(HttpGet(port, "/metrics?x=1"));
  expect_that(HasLine(body, "gitaly_praefect_method_types{method_type=\"mutator\"} 2"), "counter in:\n" + body);
}

static void test_other_paths_and_methods(void**) {
  auto exposer = Exposer::Listen("127.0.0.1:0", Fixed("x 1\n"));
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  std::string r = HttpGet(port, "/");
  expect_that(r.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0, "404 for /, got:\n" + r);
  r = HttpGet(port, "/metrics", "POST");
  expect_that(r.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0, "405 for POST, got:\n" + r);
  expect_that(r.find("Allow: GET, HEAD\r\n") != std::string::npos, "Allow header, got:\n" + r);
  r = HttpGet(port, "/metrics", "HEAD");
  expect_that(r.rfind("HTTP/1.1 200 OK\r\n", 0) == 0, "200 for HEAD, got:\n" + r);
  expect_that(r.find("Content-Length: 4\r\n") != std::string::npos && Body(r).empty(),
              "HEAD: length of the body, no body; got:\n" + r);
  r = RawHttp(port, "garbage\r\n\r\n");
  expect_that(r.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0, "400 for garbage, got:\n" + r);
  // Still serving after all that.
  expect_that(Body(HttpGet(port, "/metrics")) == "x 1\n", "body after errors");
}

static void test_several_endpoints(void**) {
  auto exposer = Exposer::Listen("127.0.0.1:0", {{"/metrics", [] { return std::string("a 1\n"); }},
                                                 {"/db_metrics", [] { return std::string("b 2\n"); }}});
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  expect_that(Body(HttpGet(port, "/metrics")) == "a 1\n", "/metrics body");
  expect_that(Body(HttpGet(port, "/db_metrics")) == "b 2\n", "/db_metrics body");
}

static void test_all_interfaces(void**) {
  auto exposer = Exposer::Listen(":0", Fixed("x 1\n"));
  assert_status_ok(exposer.status());
  expect_that(Body(HttpGet((*exposer)->port(), "/metrics")) == "x 1\n", "served on 127.0.0.1 via \":port\"");
}

static void test_bad_addresses(void**) {
  ExpectError(Exposer::Listen("localhost", Fixed("")).status(), StatusCode::kInvalidArgument, "has no port");
  ExpectError(Exposer::Listen("localhost:http", Fixed("")).status(), StatusCode::kInvalidArgument,
              "port \"http\" is not a number from 0 to 65535");
  ExpectError(Exposer::Listen("127.0.0.1:65536", Fixed("")).status(), StatusCode::kInvalidArgument,
              "not a number from 0 to 65535");
  ExpectError(Exposer::Listen("tcp://127.0.0.1:9236", Fixed("")).status(), StatusCode::kInvalidArgument,
              "without a scheme");
  ExpectError(Exposer::Listen("::1:9236", Fixed("")).status(), StatusCode::kInvalidArgument,
              "needs brackets, as in \"[::1]:9652\"");
  ExpectError(Exposer::Listen("192.0.2.1:0", Fixed("")).status(), StatusCode::kFailedPrecondition,
              "this host has no such address");
}

static void test_port_in_use(void**) {
  int port = 0;
  int holder = ListenLoopback(&port);
  std::string address = "127.0.0.1:" + std::to_string(port);
  Status st = Exposer::Listen(address, Fixed("")).status();
  close(holder);
  ExpectError(st, StatusCode::kFailedPrecondition,
              "cannot listen for metrics on \"" + address + "\": Address already in use; another process");
  ExpectError(st, StatusCode::kFailedPrecondition, "set prometheus_listen_addr to a free port");
}

static void test_adopts_listening_fd(void**) {
  int port = 0;
  int fd = ListenLoopback(&port);
  auto exposer = Exposer::Adopt(fd, Fixed("adopted 1\n"));
  assert_status_ok(exposer.status());
  assert_int_equal((*exposer)->port(), port);
  expect_that(Body(HttpGet(port, "/metrics")) == "adopted 1\n", "served on the adopted socket");
}

static void test_refuses_non_listening_fd(void**) {
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds), 0);
  ExpectError(Exposer::Adopt(fds[0], Fixed("")).status(), StatusCode::kInvalidArgument,
              "is not a listening stream socket");
  close(fds[1]);
  int unlistened = socket(AF_INET, SOCK_STREAM, 0);
  ExpectError(Exposer::Adopt(unlistened, Fixed("")).status(), StatusCode::kInvalidArgument,
              "is not a listening stream socket");
  int pipes[2];
  assert_int_equal(pipe(pipes), 0);
  ExpectError(Exposer::Adopt(pipes[0], Fixed("")).status(), StatusCode::kInvalidArgument, "is not a socket");
  close(pipes[1]);
}

static void test_silent_client_does_not_block_shutdown(void**) {
  auto exposer = Exposer::Listen("127.0.0.1:0", Fixed("x 1\n"));
  assert_status_ok(exposer.status());
  // Connects and sends nothing; the destructor must not wait for its deadline.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>((*exposer)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr), 0);
  auto start = std::chrono::steady_clock::now();
  exposer = praefect::InvalidArgument("destroyed");
  auto took = std::chrono::steady_clock::now() - start;
  close(fd);
  expect_that(took < Exposer::kConnectionDeadline / 2, "a prompt stop with a silent client connected");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_serves_metrics_on_ephemeral_port),
      cmocka_unit_test(test_other_paths_and_methods),
      cmocka_unit_test(test_several_endpoints),
      cmocka_unit_test(test_all_interfaces),
      cmocka_unit_test(test_bad_addresses),
      cmocka_unit_test(test_port_in_use),
      cmocka_unit_test(test_adopts_listening_fd),
      cmocka_unit_test(test_refuses_non_listening_fd),
      cmocka_unit_test(test_silent_client_does_not_block_shutdown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
