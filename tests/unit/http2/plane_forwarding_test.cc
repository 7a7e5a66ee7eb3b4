// The four call shapes, first-message rewrite, metadata and headers, through
// a real proxy server between a real client and backend.

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "plane_harness.h"
#include "test_support.h"

using praefect::StatusOr;
using praefect::http2::Route;
using namespace praefect::http2::testing;

namespace {

const std::string kEcho = "/test.Backend/Echo";
const std::string kCollect = "/test.Backend/Collect";
const std::string kStream = "/test.Backend/Stream";

void ExpectOk(const grpc::Status& st) {
  expect_that(st.ok(), "status OK, got code " + std::to_string(st.error_code()) + ": " + st.error_message());
}

void ExpectFinalizedOnce(Fixture& f, grpc::StatusCode code) {
  auto fin = f.director.finalized();
  expect_that(fin.size() == 1, "the finalizer to run exactly once, ran " + std::to_string(fin.size()) + " times");
  expect_that(fin[0].error_code() == code, "the finalizer to see code " + std::to_string(code) + ", saw " +
                                               std::to_string(fin[0].error_code()));
}

void test_unary(void**) {
  Fixture f;
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"ping"});
  ExpectOk(r.status);
  expect_that(r.responses == std::vector<std::string>{"ping"}, "one response \"ping\"");
  auto seen = f.director.seen();
  expect_that(seen.size() == 1 && seen[0].method == kEcho, "the director to be asked once for " + kEcho);
  expect_that(seen[0].first_message == std::optional<std::string>("ping"), "the director to see the first message");
  expect_that(f.backend->CallCount() == 1, "one backend call");
  ExpectFinalizedOnce(f, grpc::StatusCode::OK);
  expect_that(f.server->stats().calls_started.load() == 1, "one call counted");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "no call left active");
  expect_that(f.server->stats().bytes_held.load() == 0, "nothing left held");
}

void test_client_streaming(void**) {
  Fixture f;
  CallResult r = RunCall(f.ProxyChannel(), kCollect, {"a", "bb", "ccc"});
  ExpectOk(r.status);
  expect_that(r.responses == std::vector<std::string>{"3:a|bb|ccc"}, "the backend to collect all three messages");
  expect_that(f.backend->Calls()[0].half_closed, "the client's half-close to reach the backend");
  ExpectFinalizedOnce(f, grpc::StatusCode::OK);
}

void test_half_close_without_message(void**) {
  Fixture f;
  CallResult r = RunCall(f.ProxyChannel(), kCollect, {});
  ExpectOk(r.status);
  expect_that(r.responses == std::vector<std::string>{"0:"}, "the backend to see no message, then the half-close");
  auto seen = f.director.seen();
  expect_that(seen.size() == 1 && !seen[0].first_message.has_value(),
              "the director to be told there is no first message");
  ExpectFinalizedOnce(f, grpc::StatusCode::OK);
}

void test_server_streaming_after_half_close(void**) {
  Fixture f;
  BlockingCall call(f.ProxyChannel(), kStream);
  expect_that(call.Write("5 1000"), "the request to be written");
  call.WritesDone();
  int n = 0;
  while (auto m = call.Read()) {
    expect_that(*m == std::string(1000, static_cast<char>('a' + n)), "message " + std::to_string(n) + " intact");
    ++n;
  }
  ExpectOk(call.Finish());
  expect_that(n == 5, "5 responses after the half-close, got " + std::to_string(n));
  ExpectFinalizedOnce(f, grpc::StatusCode::OK);
}

void test_bidi(void**) {
  Fixture f;
  BlockingCall call(f.ProxyChannel(), kEcho);
  for (const std::string& m : std::vector<std::string>{"one", "", std::string(100000, 'x'), "four"}) {
    expect_that(call.Write(m), "write " + m.substr(0, 8));
    auto got = call.Read();
    expect_that(got == std::optional<std::string>(m), "the echo of " + m.substr(0, 8) + " before the next write");
  }
  call.WritesDone();
  expect_that(!call.Read().has_value(), "the stream to end after the half-close");
  ExpectOk(call.Finish());
  expect_that(call.InitialMetadata().count("x-initial") == 1, "the backend's initial metadata");
  ExpectFinalizedOnce(f, grpc::StatusCode::OK);
}

void test_first_message_rewrite(void**) {
  Fixture f;
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route r = f.BackendRoute();
    r.first_message = "rewritten:" + seen.first_message.value_or("(none)");
    return r;
  });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"one", "two"});
  ExpectOk(r.status);
  expect_that(r.responses == (std::vector<std::string>{"rewritten:one", "two"}),
              "only the first message to be rewritten");
  auto calls = f.backend->Calls();
  expect_that(calls[0].messages == (std::vector<std::string>{"rewritten:one", "two"}),
              "the backend to receive the rewritten first message and the second untouched");

  // With no client message, a rewrite is still sent.
  CallResult r2 = RunCall(f.ProxyChannel(), kCollect, {});
  ExpectOk(r2.status);
  expect_that(r2.responses == std::vector<std::string>{"1:rewritten:(none)"},
              "the director's first message to be sent when the client sent none");
}

void test_large_first_message(void**) {
  // Arrives in many slices: the director gets it flattened, the backend
  // gets the original bytes. Larger than grpc's default 4 MiB receive limit,
  // which the proxy's server and upstream channel must lift.
  Fixture f;
  std::string big(5 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + i / 4096);
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {big, "tail"});
  ExpectOk(r.status);
  expect_that(r.responses.size() == 2 && r.responses[0] == big && r.responses[1] == "tail",
              "the 5 MiB first message echoed byte for byte");
  expect_that(f.director.seen()[0].first_message == std::optional<std::string>(big),
              "the director to see the whole 5 MiB first message");
}

void test_message_size_limit(void**) {
  praefect::http2::testing::Options options;
  options.max_message_bytes = 1 << 20;
  Fixture f(options);
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {std::string(2 << 20, 'x')});
  expect_that(r.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED,
              "a 2 MiB message over a 1 MiB limit to be refused with RESOURCE_EXHAUSTED, got " +
                  std::to_string(r.status.error_code()) + " " + r.status.error_message());
  expect_that(r.status.error_message().find("larger than the limit of 1048576 bytes") != std::string::npos,
              "a message giving the limit, got " + r.status.error_message());
  expect_that(f.backend->CallCount() == 0, "no upstream call");
  CallResult small = RunCall(f.ProxyChannel(), kEcho, {std::string(1000, 'x')});
  ExpectOk(small.status);

  // Mid-stream: the upstream call is cancelled, never half-closed (it would
  // take the truncated stream for a complete one).
  // The oversized prefix may arrive before the upstream call starts (then
  // there is none) or after (then it is cancelled); either way the node
  // never sees a complete request.
  const size_t calls_before = f.backend->CallCount();
  CallResult mid = RunCall(f.ProxyChannel(), kCollect, {"first", std::string(2 << 20, 'x'), "third"});
  expect_that(mid.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED,
              "RESOURCE_EXHAUSTED mid-stream, got " + std::to_string(mid.status.error_code()) + " " +
                  mid.status.error_message());
  if (f.backend->CallCount() > calls_before) {
    expect_that(Eventually([&] { return f.backend->Calls().back().cancelled; }), "the upstream call cancelled");
    expect_that(!f.backend->Calls().back().half_closed, "the upstream call never half-closed");
  }

  // Responses come from the nodes, which praefect trusts, and are not
  // limited: the data plane never holds a whole response message anyway.
  CallResult down = RunCall(f.ProxyChannel(), kStream, {"1 2097152"});
  expect_that(down.status.ok() && down.responses.size() == 1 && down.responses[0].size() == (2u << 20),
              "a 2 MiB response passes, got " + std::to_string(down.status.error_code()) + " " +
                  down.status.error_message());
}

void test_metadata(void**) {
  Fixture f;
  const std::string client_bin("\x00\x01\xfe\xff", 4);
  const std::string node_bin("\xff\x00node", 6);
  f.director.set_decide([&](const TestDirector::Seen&) -> StatusOr<Route> {
    Route r = f.BackendRoute();
    r.set_metadata = {{"authorization", "Bearer node-token"}, {"x-added-bin", node_bin}};
    r.drop_metadata = {"x-drop"};
    return r;
  });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"m"}, [&](grpc::ClientContext* ctx) {
    ctx->AddMetadata("x-custom", "a");
    ctx->AddMetadata("x-multi", "1");
    ctx->AddMetadata("x-multi", "2");
    ctx->AddMetadata("x-bin-bin", client_bin);
    ctx->AddMetadata("authorization", "Bearer client-token");
    ctx->AddMetadata("x-drop", "gone");
  });
  ExpectOk(r.status);

  auto seen = f.director.seen()[0].metadata;
  expect_that(Values(seen, "authorization") == std::vector<std::string>{"Bearer client-token"},
              "the director to see the client's authorization");
  expect_that(Values(seen, "x-drop").size() == 1, "the director to see every client header");

  auto md = f.backend->Calls()[0].metadata;
  expect_that(Values(md, "x-custom") == std::vector<std::string>{"a"}, "x-custom forwarded");
  auto multi = Values(md, "x-multi");
  expect_that(multi.size() == 2, "both values of x-multi forwarded");
  expect_that(Values(md, "x-bin-bin") == std::vector<std::string>{client_bin}, "a binary header forwarded byte for byte");
  expect_that(Values(md, "authorization") == std::vector<std::string>{"Bearer node-token"},
              "authorization replaced by the director's");
  expect_that(Values(md, "x-added-bin") == std::vector<std::string>{node_bin}, "the director's binary header added");
  expect_that(md.count("x-drop") == 0, "x-drop dropped");
  expect_that(md.count("user-agent") <= 1, "one user-agent at most (the proxy's own)");
  for (const auto& [k, v] : md) {
    expect_that(k.empty() || k[0] != ':', "no pseudo-header in application metadata: " + k);
  }
}

void test_headers_before_any_message(void**) {
  Fixture f;
  BlockingCall call(f.ProxyChannel(), "/test.Backend/Headers");
  // The proxy needs the first message to route the call. The backend then
  // sends headers and no message: the client must get them anyway (a
  // client may wait for headers before going on).
  expect_that(call.Write("first"), "write the first message");
  expect_that(call.WaitForHeaders(), "the backend's headers to reach the client before any message");
  auto initial = call.InitialMetadata();
  expect_that(Values(initial, "x-early") == std::vector<std::string>{"yes"}, "x-early in the headers");
  expect_that(call.Write("hello"), "write");
  expect_that(call.Read() == std::optional<std::string>("hello"), "the echo");
  call.WritesDone();
  expect_that(!call.Read().has_value(), "end of stream");
  ExpectOk(call.Finish());
}

void test_async_director(void**) {
  Fixture f;
  f.director.set_async([] { std::this_thread::sleep_for(std::chrono::milliseconds(20)); });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"x", "y"});
  ExpectOk(r.status);
  expect_that(r.responses == (std::vector<std::string>{"x", "y"}), "both echoes with a director answering later");
  ExpectFinalizedOnce(f, grpc::StatusCode::OK);
}

void test_concurrent_calls(void**) {
  Fixture f;
  auto channel = f.ProxyChannel();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        std::string m = std::to_string(t) + "/" + std::to_string(i);
        CallResult r = RunCall(channel, kEcho, {m, m});
        if (r.status.ok() && r.responses == std::vector<std::string>{m, m}) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  expect_that(ok.load() == 80, "80 concurrent calls to succeed, " + std::to_string(ok.load()) + " did");
  expect_that(f.director.finalized().size() == 80, "one finalizer run per call");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "no call left active");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unary),
      cmocka_unit_test(test_client_streaming),
      cmocka_unit_test(test_half_close_without_message),
      cmocka_unit_test(test_server_streaming_after_half_close),
      cmocka_unit_test(test_bidi),
      cmocka_unit_test(test_first_message_rewrite),
      cmocka_unit_test(test_large_first_message),
      cmocka_unit_test(test_message_size_limit),
      cmocka_unit_test(test_metadata),
      cmocka_unit_test(test_headers_before_any_message),
      cmocka_unit_test(test_async_director),
      cmocka_unit_test(test_concurrent_calls),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
