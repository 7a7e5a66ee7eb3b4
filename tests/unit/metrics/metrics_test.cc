#include "metrics/metrics.h"

#include <chrono>
#include <thread>
#include <vector>

#include "scrape.h"
#include "test_support.h"

using praefect::metrics::GrpcCodeName;
using praefect::metrics::GrpcType;
using praefect::metrics::GrpcTypeName;
using praefect::metrics::Metrics;
using praefect::metrics::Options;
using praefect::metrics::testing::HasLine;

namespace {

void ExpectLine(const std::string& text, const std::string& line) {
  expect_that(HasLine(text, line), "line \"" + line + "\" in:\n" + text);
}

void ExpectNoText(const std::string& text, const std::string& fragment) {
  expect_that(text.find(fragment) == std::string::npos, "no \"" + fragment + "\" in:\n" + text);
}

}  // namespace

static void test_code_names_are_go_names(void**) {
  const char* want[] = {"OK",
                        "Canceled",
                        "Unknown",
                        "InvalidArgument",
                        "DeadlineExceeded",
                        "NotFound",
                        "AlreadyExists",
                        "PermissionDenied",
                        "ResourceExhausted",
                        "FailedPrecondition",
                        "Aborted",
                        "OutOfRange",
                        "Unimplemented",
                        "Internal",
                        "Unavailable",
                        "DataLoss",
                        "Unauthenticated"};
  for (int code = 0; code < 17; ++code) assert_string_equal(GrpcCodeName(code).c_str(), want[code]);
  assert_string_equal(GrpcCodeName(17).c_str(), "Code(17)");
}

static void test_type_names(void**) {
  assert_string_equal(std::string(GrpcTypeName(GrpcType::kUnary)).c_str(), "unary");
  assert_string_equal(std::string(GrpcTypeName(GrpcType::kClientStream)).c_str(), "client_stream");
  assert_string_equal(std::string(GrpcTypeName(GrpcType::kServerStream)).c_str(), "server_stream");
  assert_string_equal(std::string(GrpcTypeName(GrpcType::kBidiStream)).c_str(), "bidi_stream");
}

static void test_method_type_counter(void**) {
  Metrics metrics(Options{});
  metrics.MethodTypeCounter("mutator").Increment();
  metrics.MethodTypeCounter("mutator").Increment();
  metrics.MethodTypeCounter("accessor").Increment();
  std::string text = metrics.Render();
  ExpectLine(text, "# TYPE gitaly_praefect_method_types counter");
  ExpectLine(text, "gitaly_praefect_method_types{method_type=\"mutator\"} 2");
  ExpectLine(text, "gitaly_praefect_method_types{method_type=\"accessor\"} 1");
}

static void test_counter_is_thread_safe(void**) {
  Metrics metrics(Options{});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&metrics] {
      for (int i = 0; i < 1000; ++i) metrics.MethodTypeCounter("accessor").Increment();
    });
  }
  for (auto& t : threads) t.join();
  assert_true(metrics.MethodTypeCounter("accessor").Value() == 4000);
}

static void test_node_latency_uses_configured_buckets(void**) {
  Options options;
  options.grpc_latency_buckets = {0.005, 0.001};  // unsorted: sorted, not thrown at
  Metrics metrics(std::move(options));
  metrics.NodeLatency("gitaly-1").Observe(0.003);
  std::string text = metrics.Render();
  ExpectLine(text, "# TYPE gitaly_praefect_node_latency histogram");
  ExpectLine(text, "gitaly_praefect_node_latency_bucket{gitaly_storage=\"gitaly-1\",le=\"0.001\"} 0");
  ExpectLine(text, "gitaly_praefect_node_latency_bucket{gitaly_storage=\"gitaly-1\",le=\"0.005\"} 1");
  ExpectLine(text, "gitaly_praefect_node_latency_bucket{gitaly_storage=\"gitaly-1\",le=\"+Inf\"} 1");
  ExpectLine(text, "gitaly_praefect_node_latency_count{gitaly_storage=\"gitaly-1\"} 1");
}

static void test_transaction_series(void**) {
  Options options;
  options.grpc_latency_buckets = {0.1, 1};
  Metrics metrics(std::move(options));
  metrics.TransactionActions("registered").Increment(3);
  metrics.TransactionDelay("vote").Observe(0.5);
  metrics.SubtransactionsPerTransaction().Observe(3);
  std::string text = metrics.Render();
  ExpectLine(text, "# TYPE gitaly_praefect_transactions_total counter");
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"registered\"} 3");
  // The delay has the configured gRPC latency buckets.
  ExpectLine(text, "gitaly_praefect_transactions_delay_seconds_bucket{action=\"vote\",le=\"0.1\"} 0");
  ExpectLine(text, "gitaly_praefect_transactions_delay_seconds_bucket{action=\"vote\",le=\"1\"} 1");
  // Praefect's fixed buckets 0, 1, 2, 4, 8, 16, 32.
  ExpectLine(text, "gitaly_praefect_subtransactions_per_transaction_total_bucket{le=\"2\"} 0");
  ExpectLine(text, "gitaly_praefect_subtransactions_per_transaction_total_bucket{le=\"4\"} 1");
  ExpectLine(text, "gitaly_praefect_subtransactions_per_transaction_total_bucket{le=\"32\"} 1");
  ExpectNoText(text, "gitaly_praefect_subtransactions_per_transaction_total_bucket{le=\"64\"}");
}

static void test_without_buckets_no_handling_histogram(void**) {
  Metrics metrics(Options{});
  metrics.PreregisterMethod("/pkg.Svc/Method");
  metrics.NodeLatency("gitaly-1").ObserveDuration(std::chrono::milliseconds(20));
  std::string text = metrics.Render();
  ExpectNoText(text, "grpc_server_handling_seconds");
  // Go's DefBuckets for the node latency, as Praefect's nil buckets give.
  ExpectLine(text, "gitaly_praefect_node_latency_bucket{gitaly_storage=\"gitaly-1\",le=\"0.025\"} 1");
  ExpectLine(text, "gitaly_praefect_node_latency_bucket{gitaly_storage=\"gitaly-1\",le=\"10\"} 1");
}

static void test_preregister_creates_zero_series(void**) {
  Options options;
  options.grpc_latency_buckets = {0.1, 1};
  options.grpc_type = [](std::string_view method) -> std::optional<GrpcType> {
    if (method == "/pkg.Svc/Get") return GrpcType::kServerStream;
    return std::nullopt;
  };
  Metrics metrics(std::move(options));
  metrics.PreregisterMethod("/pkg.Svc/Get");
  metrics.PreregisterMethod("no-slash");
  std::string text = metrics.Render();
  const std::string labels = "grpc_method=\"Get\",grpc_service=\"pkg.Svc\",grpc_type=\"server_stream\"";
  ExpectLine(text, "grpc_server_started_total{" + labels + "} 0");
  ExpectLine(text, "grpc_server_msg_received_total{" + labels + "} 0");
  ExpectLine(text, "grpc_server_msg_sent_total{" + labels + "} 0");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"OK\"," + labels + "} 0");
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"Unauthenticated\"," + labels + "} 0");
  ExpectLine(text, "grpc_server_handling_seconds_count{" + labels + "} 0");
  // go-grpc-prometheus' splitMethodName for a name without "/service/method".
  ExpectLine(text,
             "grpc_server_started_total{grpc_method=\"unknown\",grpc_service=\"unknown\",grpc_type=\"bidi_stream\"} 0");
}

// grpc_client_*: the proxied call's stream to the node, counted as
// go-grpc-prometheus' client interceptors count (started when it opens,
// handled with the call's code, messages each way), and praefect's own
// calls through ClientCallStarted/Finished. A call answered by praefect
// itself opens no stream and has no client series.
static void test_client_series(void**) {
  Options options;
  options.grpc_latency_buckets = {0.1, 1};
  Metrics metrics(options);
  auto observer = metrics.NewCallObserver();
  const std::string method = "/gitaly.RefService/RefExists";
  observer->OnStarted(method);
  observer->OnUpstreamCall(method);
  praefect::http2::CallObserver::Finished f;
  f.method = method;
  f.code = praefect::StatusCode::kNotFound;
  f.messages_received = 1;  // from the client: sent to the node
  f.messages_sent = 3;      // to the client: received from the node
  f.upstream = "gitaly-1";
  f.upstream_called = true;
  f.duration = std::chrono::milliseconds(50);
  observer->OnFinished(f);
  // Answered here: no stream to a node.
  observer->OnStarted("/gitaly.RepositoryService/RepositoryExists");
  praefect::http2::CallObserver::Finished local;
  local.method = "/gitaly.RepositoryService/RepositoryExists";
  observer->OnFinished(local);
  metrics.ClientCallStarted("/grpc.health.v1.Health/Check");
  metrics.ClientCallFinished("/grpc.health.v1.Health/Check", 14, std::chrono::milliseconds(2), 1, 0);

  std::string text = metrics.Render();
  const std::string labels = "grpc_method=\"RefExists\",grpc_service=\"gitaly.RefService\",grpc_type=\"bidi_stream\"";
  ExpectLine(text, "grpc_client_started_total{" + labels + "} 1");
  ExpectLine(text, "grpc_client_handled_total{grpc_code=\"NotFound\"," + labels + "} 1");
  ExpectLine(text, "grpc_client_msg_sent_total{" + labels + "} 1");
  ExpectLine(text, "grpc_client_msg_received_total{" + labels + "} 3");
  ExpectLine(text, "grpc_client_handling_seconds_count{" + labels + "} 1");
  ExpectNoText(text, "grpc_client_started_total{grpc_method=\"RepositoryExists\"");
  ExpectLine(text, "grpc_client_handled_total{grpc_code=\"Unavailable\",grpc_method=\"Check\","
                   "grpc_service=\"grpc.health.v1.Health\",grpc_type=\"bidi_stream\"} 1");
  // The server side of the same calls is unchanged.
  ExpectLine(text, "grpc_server_handled_total{grpc_code=\"NotFound\"," + labels + "} 1");
}

// Text registered with AddRenderer follows the registry's, at each scrape.
static void test_renderers_appended(void**) {
  Metrics metrics(Options{});
  int calls = 0;
  metrics.AddRenderer([&calls] {
    ++calls;
    return std::string("# TYPE extra_series gauge\nextra_series ") + std::to_string(calls) + "\n";
  });
  metrics.Connections("tls").Increment();
  std::string text = metrics.Render();
  ExpectLine(text, "extra_series 1");
  ExpectLine(text, "gitaly_praefect_connections_total{type=\"tls\"} 1");
  ExpectLine(metrics.Render(), "extra_series 2");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_code_names_are_go_names),
      cmocka_unit_test(test_type_names),
      cmocka_unit_test(test_method_type_counter),
      cmocka_unit_test(test_counter_is_thread_safe),
      cmocka_unit_test(test_node_latency_uses_configured_buckets),
      cmocka_unit_test(test_transaction_series),
      cmocka_unit_test(test_without_buckets_no_handling_histogram),
      cmocka_unit_test(test_preregister_creates_zero_series),
      cmocka_unit_test(test_client_series),
      cmocka_unit_test(test_renderers_appended),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
