// go-grpc-prometheus' server metrics, from calls as the data plane reports
// them to the metrics' CallObserver, scraped over HTTP as Prometheus would.
// (The data plane's own reports are checked end to end by
// e2e/praefect-proxy, which scrapes a running praefect.)

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/support/sync_stream.h>

#include <atomic>
#include <thread>

#include "metrics/exposer.h"
#include "metrics/metrics.h"
#include "scrape.h"
#include "test_support.h"

using praefect::StatusOr;
using praefect::metrics::Exposer;
using praefect::metrics::GrpcType;
using praefect::metrics::Metrics;
using praefect::metrics::MetricsEndpoint;
using praefect::metrics::Options;
using praefect::metrics::testing::Body;
using praefect::metrics::testing::HasLine;
using praefect::metrics::testing::HttpGet;

namespace {

// Methods the test's "registry" knows; anything else is unknown.
std::optional<GrpcType> Lookup(std::string_view method) {
  if (method == "/test.Svc/Echo") return GrpcType::kUnary;
  if (method == "/test.Svc/Upload") return GrpcType::kClientStream;
  if (method == "/test.Svc/Download") return GrpcType::kServerStream;
  if (method == "/test.Svc/Chat") return GrpcType::kBidiStream;
  return std::nullopt;
}

// Calls as the data plane reports them to the metrics' CallObserver. The
// request says what happens: "fail:N" ends the call with status code N at
// that message, "advance:MS" makes the call take MS milliseconds longer;
// any other message is answered with itself.
struct Fixture {
  explicit Fixture(Options options) : metrics(std::move(options)), observer(metrics.NewCallObserver()) {}

  grpc::Status Unary(const std::string& method, const std::string& request, std::string* response = nullptr) {
    int answers = 0;
    grpc::Status st = Stream(method, {request}, &answers);
    if (response != nullptr && st.ok()) *response = request;
    return st;
  }
  // Sends `messages` on one stream; returns the status and the answers.
  grpc::Status Stream(const std::string& method, const std::vector<std::string>& messages, int* answers) {
    observer->OnStarted(method);
    praefect::http2::CallObserver::Finished f;
    f.method = method;
    *answers = 0;
    grpc::Status st = grpc::Status::OK;
    for (const auto& m : messages) {
      ++f.messages_received;
      if (m.rfind("fail:", 0) == 0) {
        st = grpc::Status(static_cast<grpc::StatusCode>(std::stoi(m.substr(5))), "failing as asked");
        break;
      }
      if (m.rfind("advance:", 0) == 0) f.duration += std::chrono::milliseconds(std::stoll(m.substr(8)));
      ++*answers;
    }
    f.messages_sent = static_cast<uint64_t>(*answers);
    f.code = static_cast<praefect::StatusCode>(st.error_code());
    observer->OnFinished(f);
    return st;
  }

  Metrics metrics;
  std::unique_ptr<praefect::http2::CallObserver> observer;
};

Options WithLookup(std::vector<double> buckets = {}) {
  Options options;
  options.grpc_latency_buckets = std::move(buckets);
  options.grpc_type = Lookup;
  return options;
}

void ExpectLine(const std::string& text, const std::string& line) {
  expect_that(HasLine(text, line), "line \"" + line + "\" in:\n" + text);
}

// Polls Render() until it has `line`, for counts that the server updates
// after the client has its answer (a cancelled call); at most 5 s.
void EventuallyLine(const Metrics& metrics, const std::string& line) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string text = metrics.Render();
  while (!HasLine(text, line) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    text = metrics.Render();
  }
  ExpectLine(text, line);
}

const std::string kEcho = "grpc_method=\"Echo\",grpc_service=\"test.Svc\",grpc_type=\"unary\"";
const std::string kChat = "grpc_method=\"Chat\",grpc_service=\"test.Svc\",grpc_type=\"bidi_stream\"";

}  // namespace

static void test_unary_calls_scraped_over_http(void**) {
  Fixture f(WithLookup());
  StatusOr<std::unique_ptr<Exposer>> exposer = Exposer::Listen("127.0.0.1:0", {MetricsEndpoint(f.metrics)});
  assert_status_ok(exposer.status());

  std::string response;
  grpc::Status st = f.Unary("/test.Svc/Echo", "hello", &response);
  assert_true(st.ok());
  assert_string_equal(response.c_str(), "hello");
  st = f.Unary("/test.Svc/Echo", "fail:5");
  assert_int_equal(st.error_code(), grpc::StatusCode::NOT_FOUND);
  st = f.Unary("/test.Svc/Echo", "fail:16");
  assert_int_equal(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  std::string text = Body(HttpGet((*exposer)->port(), "/metrics"));
  ExpectLine(text, "# TYPE grpc_server_started_total counter");
  ExpectLine(text, "grpc_server_started_total{" + kEcho + "} 3");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"OK\"," + kEcho + "} 1");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"NotFound\"," + kEcho + "} 1");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"Unauthenticated\"," + kEcho + "} 1");
  // The total systemd's STATUS= rate is computed from: every code counted.
  assert_int_equal(f.metrics.HandledCalls(), 3);
  ExpectLine(text, "grpc_server_msg_received_total{" + kEcho + "} 3");
  // Only the successful call sent a response, as in go-grpc-prometheus.
  ExpectLine(text, "grpc_server_msg_sent_total{" + kEcho + "} 1");
  expect_that(text.find("grpc_server_handling_seconds") == std::string::npos,
              "no handling-time histogram without buckets, in:\n" + text);
}

static void test_stream_messages_counted(void**) {
  Fixture f(WithLookup());
  int answers = 0;
  grpc::Status st = f.Stream("/test.Svc/Chat", {"a", "b", "c"}, &answers);
  assert_true(st.ok());
  assert_int_equal(answers, 3);
  st = f.Stream("/test.Svc/Chat", {"a", "fail:9"}, &answers);
  assert_int_equal(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  std::string text = f.metrics.Render();
  ExpectLine(text, "grpc_server_started_total{" + kChat + "} 2");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"OK\"," + kChat + "} 1");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"FailedPrecondition\"," + kChat + "} 1");
  ExpectLine(text, "grpc_server_msg_received_total{" + kChat + "} 5");
  ExpectLine(text, "grpc_server_msg_sent_total{" + kChat + "} 4");
}

static void test_type_comes_from_lookup(void**) {
  Fixture f(WithLookup());
  int answers = 0;
  assert_true(f.Stream("/test.Svc/Upload", {"x"}, &answers).ok());
  assert_true(f.Stream("/test.Svc/Download", {"x"}, &answers).ok());
  assert_true(f.Stream("/other.Svc/Unknown", {"x"}, &answers).ok());
  std::string text = f.metrics.Render();
  ExpectLine(text,
             "grpc_server_started_total{grpc_method=\"Upload\",grpc_service=\"test.Svc\",grpc_type=\"client_stream\"} 1");
  ExpectLine(text,
             "grpc_server_started_total{grpc_method=\"Download\",grpc_service=\"test.Svc\",grpc_type=\"server_stream\"} "
             "1");
  // Methods the lookup does not know share one series, whatever their names.
  assert_true(f.Stream("/other.Svc/Invented1", {"x"}, &answers).ok());
  assert_true(f.Stream("/other.Svc/Invented2", {"x"}, &answers).ok());
  text = f.metrics.Render();
  ExpectLine(text,
             "grpc_server_started_total{grpc_method=\"unknown\",grpc_service=\"unknown\",grpc_type=\"bidi_stream\"} 3");
  expect_that(text.find("Invented") == std::string::npos && text.find("other.Svc") == std::string::npos,
              "no series named after an unknown method:\n" + text);
}

static void test_without_lookup_every_method_is_bidi(void**) {
  Fixture f(Options{});
  assert_true(f.Unary("/test.Svc/Echo", "x").ok());
  ExpectLine(f.metrics.Render(),
             "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Echo\",grpc_service=\"test.Svc\","
             "grpc_type=\"bidi_stream\"} 1");
}

static void test_handling_histogram_with_buckets(void**) {
  Fixture f(WithLookup({0.5, 1}));
  assert_true(f.Unary("/test.Svc/Echo", "advance:700").ok());
  std::string text = f.metrics.Render();
  ExpectLine(text, "# TYPE grpc_server_handling_seconds histogram");
  ExpectLine(text, "grpc_server_handling_seconds_bucket{" + kEcho + ",le=\"0.5\"} 0");
  ExpectLine(text, "grpc_server_handling_seconds_bucket{" + kEcho + ",le=\"1\"} 1");
  ExpectLine(text, "grpc_server_handling_seconds_bucket{" + kEcho + ",le=\"+Inf\"} 1");
  ExpectLine(text, "grpc_server_handling_seconds_sum{" + kEcho + "} 0.7");
  ExpectLine(text, "grpc_server_handling_seconds_count{" + kEcho + "} 1");
}

static void test_cancelled_call_counted(void**) {
  Fixture f(WithLookup());
  int answers = 0;
  assert_int_equal(f.Stream("/test.Svc/Chat", {"one", "fail:1"}, &answers).error_code(), grpc::StatusCode::CANCELLED);
  EventuallyLine(f.metrics, "grpc_server_handled_total{grpc_code=\"Canceled\"," + kChat + "} 1");
  ExpectLine(f.metrics.Render(), "grpc_server_started_total{" + kChat + "} 1");
}

static void test_concurrent_calls(void**) {
  Fixture f(WithLookup({0.1}));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (!f.Unary("/test.Svc/Echo", "x").ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  assert_int_equal(failures.load(), 0);
  std::string text = f.metrics.Render();
  ExpectLine(text, "grpc_server_started_total{" + kEcho + "} 100");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"OK\"," + kEcho + "} 100");
  assert_int_equal(f.metrics.HandledCalls(), 100);
  ExpectLine(text, "grpc_server_handling_seconds_count{" + kEcho + "} 100");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary_calls_scraped_over_http),
      cmocka_unit_test(test_stream_messages_counted),
      cmocka_unit_test(test_type_comes_from_lookup),
      cmocka_unit_test(test_without_lookup_every_method_is_bidi),
      cmocka_unit_test(test_handling_histogram_with_buckets),
      cmocka_unit_test(test_cancelled_call_counted),
      cmocka_unit_test(test_concurrent_calls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
