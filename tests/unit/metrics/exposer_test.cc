#include "metrics/exposer.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

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
using praefect::metrics::testing::Connect;
using praefect::metrics::testing::HasLine;
using praefect::metrics::testing::HttpGet;
using praefect::metrics::testing::RawHttp;
using praefect::metrics::testing::ReadAll;
using praefect::metrics::testing::SendAll;

namespace {

using Clock = std::chrono::steady_clock;

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

bool StartsWith(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// Connections open while a test runs, closed at its end.
class OpenConnections {
 public:
  ~OpenConnections() { CloseAll(); }
  int Open(int port) {
    int fd = Connect(port);
    assert_true(fd >= 0);
    fds_.push_back(fd);
    return fd;
  }
  size_t size() const { return fds_.size(); }
  void CloseAll() {
    for (int fd : fds_) close(fd);
    fds_.clear();
  }

 private:
  std::vector<int> fds_;
};

// A renderer that blocks until Release() (or 10 s, so that a broken server
// fails the test instead of hanging it), counting the calls in progress.
class BlockingRenderer {
 public:
  Exposer::Renderer renderer() {
    return [this] {
      std::unique_lock<std::mutex> lock(mu_);
      ++inside_;
      changed_.notify_all();
      if (!changed_.wait_for(lock, std::chrono::seconds(10), [this] { return released_; })) gave_up_ = true;
      --inside_;
      return std::string("slow 1\n");
    };
  }
  // Waits up to 4 s for `n` calls in progress at once.
  bool WaitInside(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(4), [&] { return inside_ >= n; });
  }
  int inside() {
    std::lock_guard<std::mutex> lock(mu_);
    return inside_;
  }
  bool gave_up() {
    std::lock_guard<std::mutex> lock(mu_);
    return gave_up_;
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  int inside_ = 0;
  bool released_ = false;
  bool gave_up_ = false;
};

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
  expect_that(r.find("Allow: GET\r\n") != std::string::npos, "Allow header, got:\n" + r);
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

// A client sending its request slowly, and one that never reads its answer,
// hold their own connections only: another scrape is answered meanwhile, and
// the slow one still gets its answer once its request is complete.
static void test_slow_clients_do_not_delay_others(void**) {
  auto exposer = Exposer::Listen("127.0.0.1:0", {{"/metrics", [] { return std::string("x 1\n"); }},
                                                 {"/big", [] { return std::string(16 << 20, '#'); }}});
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  OpenConnections open;
  int dribbler = open.Open(port);
  for (char c : std::string("GET /met")) assert_true(SendAll(dribbler, std::string_view(&c, 1)));
  int non_reader = open.Open(port);
  assert_true(SendAll(non_reader, "GET /big HTTP/1.1\r\n\r\n"));

  auto start = Clock::now();
  std::string r = HttpGet(port, "/metrics");
  auto took = Clock::now() - start;
  expect_that(StartsWith(r, "HTTP/1.1 200 OK\r\n") && Body(r) == "x 1\n", "a scrape answered, got:\n" + r);
  expect_that(took < Exposer::kConnectionDeadline - std::chrono::seconds(1),
              "the scrape answered before the slow client's deadline, took " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) + " ms");

  assert_true(SendAll(dribbler, "rics HTTP/1.1\r\nHost: x\r\n\r\n"));
  r = ReadAll(dribbler);
  expect_that(StartsWith(r, "HTTP/1.1 200 OK\r\n") && Body(r) == "x 1\n", "the slow client answered, got:\n" + r);
}

// A renderer blocked (as on a slow database) holds its own scrapes only:
// another endpoint is answered meanwhile, and the renderer is called from
// two connections at once.
static void test_blocked_renderer_does_not_block_others(void**) {
  BlockingRenderer slow;
  auto exposer = Exposer::Listen("127.0.0.1:0",
                                 {{"/metrics", [] { return std::string("x 1\n"); }}, {"/db_metrics", slow.renderer()}});
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  std::string slow_answers[2];
  std::thread scrapers[2];
  for (int i = 0; i < 2; ++i) scrapers[i] = std::thread([&, i] { slow_answers[i] = HttpGet(port, "/db_metrics"); });
  bool both_inside = slow.WaitInside(2);
  std::string r = both_inside ? HttpGet(port, "/metrics") : "";
  int inside_after = slow.inside();
  slow.Release();
  for (std::thread& t : scrapers) t.join();

  expect_that(both_inside, "two concurrent calls of the blocked renderer");
  expect_that(StartsWith(r, "HTTP/1.1 200 OK\r\n") && Body(r) == "x 1\n",
              "/metrics answered while /db_metrics renders, got:\n" + r);
  expect_that(inside_after == 2 && !slow.gave_up(), "/metrics answered before the renderer was released");
  for (const std::string& answer : slow_answers) {
    expect_that(StartsWith(answer, "HTTP/1.1 200 OK\r\n") && Body(answer) == "slow 1\n",
                "/db_metrics answered once released, got:\n" + answer);
  }
}

static void ExpectStatus(int port, const std::string& request, std::string_view status, const std::string& what) {
  std::string r = RawHttp(port, request);
  expect_that(StartsWith(r, "HTTP/1.1 " + std::string(status) + "\r\n"),
              std::string(status) + " for " + what + ", got:\n" + r.substr(0, 400));
}

static void test_refuses_what_is_not_a_get(void**) {
  auto exposer = Exposer::Listen("127.0.0.1:0", Fixed("x 1\n"));
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  for (const char* method : {"POST", "PUT", "HEAD", "DELETE", "OPTIONS"}) {
    std::string r = HttpGet(port, "/metrics", method);
    expect_that(StartsWith(r, "HTTP/1.1 405 Method Not Allowed\r\n"),
                std::string("405 for ") + method + ", got:\n" + r);
    expect_that(r.find("\r\nAllow: GET\r\n") != std::string::npos, std::string("Allow: GET for ") + method);
    if (std::string_view(method) == "HEAD") expect_that(Body(r).empty(), "no body in an answer to HEAD, got:\n" + r);
  }
  ExpectStatus(port, "GET /nope HTTP/1.1\r\n\r\n", "404 Not Found", "an unknown path");
  ExpectStatus(port, "GET /metrics/ HTTP/1.1\r\n\r\n", "404 Not Found", "a path with a trailing slash");

  for (const char* line : {"garbage", "GET /metrics HTTP/2.0", "GET /metrics", "GET /metrics HTTP/1.1 extra",
                           "GET  /metrics HTTP/1.1", "GET /metrics HTTP/1.10", "GET\t/metrics HTTP/1.1"}) {
    ExpectStatus(port, std::string(line) + "\r\n\r\n", "400 Bad Request", std::string("request line \"") + line + "\"");
  }
  // Answered as soon as the request line is known to be wrong: no waiting
  // for the rest of a head that will not come.
  auto start = Clock::now();
  ExpectStatus(port, "SSH-2.0-OpenSSH_9.2\r\n", "400 Bad Request", "a request line alone");
  expect_that(Clock::now() - start < std::chrono::seconds(2), "a prompt 400");

  const std::string get = "GET /metrics HTTP/1.1\r\n";
  std::string big(17 * 1024, 'a');
  ExpectStatus(port, get + "X-Big: " + big + "\r\n\r\n", "431 Request Header Fields Too Large", "a 17 KiB header");
  ExpectStatus(port, get + "X-Big: " + big, "431 Request Header Fields Too Large", "17 KiB of unfinished head");
  ExpectStatus(port, get + "X-Big: " + std::string(15 * 1024, 'a') + "\r\n\r\n", "200 OK", "a 15 KiB header");

  ExpectStatus(port, get + "Content-Length: 5\r\n\r\nhello", "400 Bad Request", "a body");
  ExpectStatus(port, get + "content-length: 1\r\n\r\nx", "400 Bad Request", "a body (lower-case header)");
  ExpectStatus(port, get + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400 Bad Request", "a chunked body");
  ExpectStatus(port, get + "Content-Length: lots\r\n\r\n", "400 Bad Request", "a malformed Content-Length");
  ExpectStatus(port, get + "no colon here\r\n\r\n", "400 Bad Request", "a malformed header field");
  ExpectStatus(port, get + "Content-Length: 0\r\n\r\n", "200 OK", "Content-Length: 0");
  ExpectStatus(port, "GET /metrics?name[]=x HTTP/1.0\r\n\r\n", "200 OK", "HTTP/1.0 and a query string");
}

// Past kMaxConnections, a connection is answered 503 at once; once the others
// close, scrapes are served again.
static void test_connection_limit(void**) {
  auto exposer = Exposer::Listen("127.0.0.1:0", Fixed("x 1\n"));
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  OpenConnections idle;
  for (size_t i = 0; i < Exposer::kMaxConnections; ++i) idle.Open(port);

  auto start = Clock::now();
  std::string r = HttpGet(port, "/metrics");
  auto took = Clock::now() - start;
  expect_that(StartsWith(r, "HTTP/1.1 503 Service Unavailable\r\n"), "503 past the limit, got:\n" + r);
  expect_that(Body(r).find("too many concurrent metrics requests") != std::string::npos &&
                  Body(r).find("retry") != std::string::npos,
              "a body saying why and to retry, got:\n" + r);
  expect_that(took < std::chrono::seconds(2), "a prompt 503");

  idle.CloseAll();
  // The server sees the closes asynchronously: poll with a deadline.
  auto deadline = Clock::now() + std::chrono::seconds(3);
  do {
    r = HttpGet(port, "/metrics");
  } while (!StartsWith(r, "HTTP/1.1 200 OK\r\n") && Clock::now() < deadline);
  expect_that(StartsWith(r, "HTTP/1.1 200 OK\r\n") && Body(r) == "x 1\n", "scrapes served again, got:\n" + r);
}

// The destructor wakes every connection instead of waiting out deadlines:
// idle clients, a half-sent request, a client not reading its answer, and a
// refused client that keeps its end open.
static void test_stops_promptly_with_connections_open(void**) {
  auto exposer = Exposer::Listen("127.0.0.1:0", {{"/metrics", [] { return std::string("x 1\n"); }},
                                                 {"/big", [] { return std::string(16 << 20, '#'); }}});
  assert_status_ok(exposer.status());
  int port = (*exposer)->port();
  OpenConnections open;
  int non_reader = open.Open(port);
  assert_true(SendAll(non_reader, "GET /big HTTP/1.1\r\n\r\n"));
  assert_true(SendAll(open.Open(port), "GET /metrics HTTP/1.1\r\n"));
  while (open.size() < Exposer::kMaxConnections) open.Open(port);
  // The next is refused, after the others were accepted (in order).
  std::string r = ReadAll(open.Open(port));
  expect_that(StartsWith(r, "HTTP/1.1 503 "), "503 past the limit, got:\n" + r);

  auto start = Clock::now();
  exposer = praefect::InvalidArgument("destroyed");
  auto took = Clock::now() - start;
  expect_that(took < std::chrono::seconds(2),
              "a prompt stop with clients connected, took " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) + " ms");
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
      cmocka_unit_test(test_slow_clients_do_not_delay_others),
      cmocka_unit_test(test_blocked_renderer_does_not_block_others),
      cmocka_unit_test(test_refuses_what_is_not_a_get),
      cmocka_unit_test(test_connection_limit),
      cmocka_unit_test(test_stops_promptly_with_connections_open),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
