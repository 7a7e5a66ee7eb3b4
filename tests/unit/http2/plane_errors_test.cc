// Errors, deadlines and cancellation through the proxy, and the finalizer.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "plane_harness.h"
#include "test_support.h"

using praefect::NotFound;
using praefect::StatusOr;
using praefect::http2::Route;
using namespace praefect::http2::testing;

namespace {

const std::string kEcho = "/test.Backend/Echo";
const std::string kFail = "/test.Backend/Fail";
const std::string kHang = "/test.Backend/Hang";

std::string Describe(const grpc::Status& st) {
  return "code " + std::to_string(st.error_code()) + " \"" + st.error_message() + "\"";
}

void ExpectCode(const grpc::Status& st, grpc::StatusCode code) {
  expect_that(st.error_code() == code, "code " + std::to_string(code) + ", got " + Describe(st));
}

void test_status_details_and_trailers_pass_through(void**) {
  Fixture f;
  for (int messages : {0, 1}) {
    CallResult r = RunCall(f.ProxyChannel(), kFail, {"x"}, [&](grpc::ClientContext* ctx) {
      ctx->AddMetadata("x-fail-messages", std::to_string(messages));
    });
    ExpectCode(r.status, grpc::StatusCode::FAILED_PRECONDITION);
    expect_that(r.status.error_message() == Backend::kFailMessage, "the backend's message unchanged, got " + Describe(r.status));
    expect_that(r.status.error_details() == Backend::kFailDetails, "the backend's binary error details unchanged");
    expect_that(Values(r.trailing, "x-trailer") == std::vector<std::string>{"t1"}, "the backend's trailer");
    expect_that(Values(r.trailing, "x-trailer-bin") == std::vector<std::string>{Backend::kTrailerBin},
                "the backend's binary trailer byte for byte");
    // Exactly what the client would see talking to the backend directly
    // (grpc++ leaves grpc-status-details-bin in the trailers, once).
    CallResult direct = RunCall(f.BackendChannel(), kFail, {"x"}, [&](grpc::ClientContext* ctx) {
      ctx->AddMetadata("x-fail-messages", std::to_string(messages));
    });
    expect_that(r.trailing == direct.trailing, "the trailers a direct call gets");
    expect_that(r.initial == direct.initial, "the headers a direct call gets");
    expect_that(r.trailing.count("grpc-status-details-bin") <= 1, "details not duplicated into the trailers");
    expect_that(r.responses.size() == static_cast<size_t>(messages),
                "the responses sent before the error: " + std::to_string(messages));
  }
  auto fin = f.director.finalized();
  expect_that(fin.size() == 2, "one finalizer run per call");
  for (const auto& st : fin) ExpectCode(st, grpc::StatusCode::FAILED_PRECONDITION);
}

void test_initial_metadata_with_error(void**) {
  Fixture f;
  CallResult r = RunCall(f.ProxyChannel(), kFail, {"x"},
                         [&](grpc::ClientContext* ctx) { ctx->AddMetadata("x-fail-messages", "1"); });
  expect_that(Values(r.initial, "x-initial") == std::vector<std::string>{"i1"},
              "the backend's initial metadata before its response");
}

void test_director_error_is_returned_as_is(void**) {
  Fixture f;
  f.director.set_decide([](const TestDirector::Seen&) -> StatusOr<Route> {
    return NotFound("repository \"@hashed/ab/cd\" not found in virtual storage \"default\"");
  });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"x"});
  ExpectCode(r.status, grpc::StatusCode::NOT_FOUND);
  expect_that(r.status.error_message() == "repository \"@hashed/ab/cd\" not found in virtual storage \"default\"",
              "the director's message unchanged, got " + Describe(r.status));
  expect_that(f.backend->CallCount() == 0, "no upstream call");
  expect_that(f.director.finalized().empty(), "no finalizer without a route");
  expect_that(Eventually([&] { return f.server->stats().bytes_held.load() == 0; }), "the first message released");
}

// A call the Director refuses at admission ends with that status before
// anything is read: a 32 MiB first message is never taken from the
// transport, the Director is never asked to route, no upstream call is made.
void test_refused_at_admission_reads_nothing(void**) {
  Fixture f;
  f.director.set_admit([](const TestDirector::Seen& seen) {
    return seen.metadata.count("authorization") == 0
               ? praefect::Status(praefect::StatusCode::kUnauthenticated, "authentication required: no token")
               : praefect::Status::Ok();
  });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {std::string(32 << 20, 'x')});
  ExpectCode(r.status, grpc::StatusCode::UNAUTHENTICATED);
  expect_that(r.status.error_message() == "authentication required: no token", "the refusal as is: " + Describe(r.status));
  expect_that(f.director.seen().empty(), "the Director never asked to route a refused call");
  expect_that(f.director.admitted_calls() == 1, "one admission decision");
  expect_that(f.server->stats().max_bytes_held.load() == 0,
              "nothing of the request held, saw " + std::to_string(f.server->stats().max_bytes_held.load()));
  expect_that(f.backend->CallCount() == 0, "no upstream call");
  // Admitted calls are read and routed as before.
  CallResult ok = RunCall(f.ProxyChannel(), kEcho, {"x"},
                          [](grpc::ClientContext* ctx) { ctx->AddMetadata("authorization", "Bearer t"); });
  ExpectCode(ok.status, grpc::StatusCode::OK);
  expect_that(f.director.admitted_calls() == 2 && f.director.seen().size() == 1, "admitted, then routed");
}

// A Route with a local response answers the call here: that one message,
// then OK, no upstream call; the finalizer hears OK.
void test_local_response(void**) {
  Fixture f;
  f.director.set_decide([](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route;
    route.local_response = "answer to " + seen.first_message.value_or("nothing");
    return route;
  });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"question"});
  ExpectCode(r.status, grpc::StatusCode::OK);
  expect_that(r.responses == std::vector<std::string>{"answer to question"},
              "the local response, got " + std::to_string(r.responses.size()) + " messages");
  expect_that(f.backend->CallCount() == 0, "no upstream call");
  expect_that(f.director.finalized().size() == 1 && f.director.finalized()[0].ok(), "the finalizer heard OK");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0 && f.server->stats().bytes_held.load() == 0; }),
              "the call ended and released its first message");
}

void test_director_dropping_done(void**) {
  Fixture f;
  f.director.set_drop(true);
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"x"});
  ExpectCode(r.status, grpc::StatusCode::INTERNAL);
  expect_that(r.status.error_message().find("dropped the call without answering") != std::string::npos &&
                  r.status.error_message().find(kEcho) != std::string::npos,
              "a message naming the method and the director's bug, got " + Describe(r.status));
  expect_that(f.backend->CallCount() == 0, "no upstream call");
}

void test_invalid_routes(void**) {
  Fixture f;
  f.director.set_decide([&](const TestDirector::Seen&) -> StatusOr<Route> {
    Route r = f.BackendRoute();
    r.upstream = nullptr;
    return r;
  });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"x"});
  ExpectCode(r.status, grpc::StatusCode::INTERNAL);
  expect_that(r.status.error_message().find("names no upstream channel") != std::string::npos,
              "a message saying the route has no channel, got " + Describe(r.status));

  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"Bad Key", "v"}, {"x-ok", std::string("line\nbreak")}, {"grpc-timeout", "1S"}, {":path", "/x"}}) {
    f.director.set_decide([&, key = key, value = value](const TestDirector::Seen&) -> StatusOr<Route> {
      Route route = f.BackendRoute();
      route.set_metadata = {{key, value}};
      return route;
    });
    CallResult bad = RunCall(f.ProxyChannel(), kEcho, {"x"});  // NOLINT
    ExpectCode(bad.status, grpc::StatusCode::INTERNAL);
    expect_that(bad.status.error_message().find("\"" + key + "\"") != std::string::npos,
                "a message naming the key " + key + ", got " + Describe(bad.status));
  }
  expect_that(f.backend->CallCount() == 0, "no upstream call for an invalid route");
  auto fin = f.director.finalized();
  expect_that(fin.size() == 5, "the finalizer of each refused route to run once");
  for (const auto& st : fin) ExpectCode(st, grpc::StatusCode::INTERNAL);
}

void test_upstream_unavailable_names_label(void**) {
  Fixture f;
  auto dead = std::make_shared<praefect::http2::Upstream>();
  dead->target.kind = praefect::http2::ConnectTarget::Kind::kUnix;
  dead->target.path = f.dir() + "/nobody-listens.sock";
  dead->authority = "localhost";
  dead->label = "nobody";
  f.director.set_decide([&](const TestDirector::Seen&) -> StatusOr<Route> {
    Route r;
    r.upstream = dead;
    r.label = "virtual storage \"default\", node \"gitaly-2\"";
    return r;
  });
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"x"});
  ExpectCode(r.status, grpc::StatusCode::UNAVAILABLE);
  expect_that(r.status.error_message().starts_with("virtual storage \"default\", node \"gitaly-2\": ") &&
                  r.status.error_message().size() > 45,
              "UNAVAILABLE naming the upstream, then grpc's reason; got " + Describe(r.status));
  auto fin = f.director.finalized();
  expect_that(fin.size() == 1, "the finalizer to run once");
  ExpectCode(fin[0], grpc::StatusCode::UNAVAILABLE);
  expect_that(fin[0].error_message().find("gitaly-2") == std::string::npos,
              "the finalizer to see the upstream status as it came");
}

void test_deadline_reaches_backend(void**) {
  Fixture f;
  const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(500);
  CallResult r = RunCall(f.ProxyChannel(), kHang, {"x"}, [&](grpc::ClientContext* ctx) { ctx->set_deadline(deadline); });
  ExpectCode(r.status, grpc::StatusCode::DEADLINE_EXCEEDED);
  auto calls = f.backend->Calls();
  expect_that(calls.size() == 1, "the call to reach the backend");
  // grpc-timeout travels as a relative timeout and is rounded up on each hop.
  expect_that(calls[0].deadline <= deadline + std::chrono::milliseconds(100),
              "the backend's deadline to be the client's, not later");
  expect_that(Eventually([&] { return f.backend->Calls()[0].cancelled; }), "the backend to see the call end");
  expect_that(Eventually([&] { return f.director.finalized().size() == 1; }), "the finalizer to run");
}

// Deadlines and cancellations of calls that find the node's connection up
// (the pool opens their stream at once), one after the other on one client
// channel: each ends alone, the channel stays usable. (A call counted its
// stream open twice here once and was deleted twice.)
void test_deadlines_on_a_ready_connection(void**) {
  Fixture f;
  auto channel = f.ProxyChannel();
  ExpectCode(RunCall(channel, kEcho, {"warm up"}).status, grpc::StatusCode::OK);
  for (int i = 0; i < 5; ++i) {
    CallResult r = RunCall(channel, kHang, {"x"}, [&](grpc::ClientContext* ctx) {
      ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    });
    ExpectCode(r.status, grpc::StatusCode::DEADLINE_EXCEEDED);
    BlockingCall cancelled(channel, kHang);
    assert_true(cancelled.Write("y"));
    expect_that(Eventually([&] { return f.backend->CallCount() >= static_cast<size_t>(2 * i + 3); }),
                "the cancelled call reached the backend");
    cancelled.Cancel();
    ExpectCode(cancelled.Finish(), grpc::StatusCode::CANCELLED);
  }
  ExpectCode(RunCall(channel, kEcho, {"still fine"}).status, grpc::StatusCode::OK);
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "every call ended");
}

void test_no_deadline_stays_none(void**) {
  Fixture f;
  CallResult r = RunCall(f.ProxyChannel(), kEcho, {"x"});
  expect_that(r.status.ok(), "OK");
  expect_that(f.backend->Calls()[0].deadline > std::chrono::system_clock::now() + std::chrono::hours(24 * 365),
              "no deadline upstream when the client set none");
}

void test_client_cancel_reaches_backend(void**) {
  Fixture f;
  BlockingCall call(f.ProxyChannel(), kHang);
  expect_that(call.Write("x"), "write");
  expect_that(Eventually([&] { return f.backend->CallCount() == 1; }), "the call to reach the backend");
  call.Cancel();
  ExpectCode(call.Finish(), grpc::StatusCode::CANCELLED);
  expect_that(Eventually([&] { return f.backend->Calls()[0].cancelled; }), "the backend to see the cancellation");
  expect_that(Eventually([&] { return f.director.finalized().size() == 1; }), "the finalizer to run");
  ExpectCode(f.director.finalized()[0], grpc::StatusCode::CANCELLED);
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "the proxied call to end");
}

void test_client_cancel_mid_stream_is_not_a_half_close(void**) {
  // A client-streaming upload cut short must reach the backend as a
  // cancellation, never as a complete (half-closed) stream. Repeated: the
  // failed read and the cancellation notice race inside grpc.
  Fixture f;
  for (int i = 0; i < 20; ++i) {
    BlockingCall call(f.ProxyChannel(), "/test.Backend/Collect");
    expect_that(call.Write("a") && call.Write("b"), "writes");
    expect_that(Eventually([&] { return f.backend->Calls().size() == size_t(i + 1) &&
                                        f.backend->Calls()[i].messages.size() == 2; }),
                "both messages to reach the backend");
    call.Cancel();
    ExpectCode(call.Finish(), grpc::StatusCode::CANCELLED);
    expect_that(Eventually([&] { return f.backend->Calls()[i].cancelled; }), "the backend call cancelled");
    expect_that(!f.backend->Calls()[i].half_closed,
                "the backend never to see a half-close of the cut stream (iteration " + std::to_string(i) + ")");
  }
}

void test_cancel_while_directing(void**) {
  Fixture f;
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  f.director.set_async([&] {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return open; });
  });
  {
    BlockingCall call(f.ProxyChannel(), kEcho);
    expect_that(call.Write("x"), "write");
    expect_that(Eventually([&] { return f.director.seen().size() == 1; }), "the director to be asked");
    call.Cancel();
    ExpectCode(call.Finish(), grpc::StatusCode::CANCELLED);
  }
  // The client's cancellation is local at once; the proxy learns of it when
  // the RST_STREAM arrives. Only then is "after the client left" defined.
  expect_that(Eventually([&] { return f.server->stats().calls_left_by_client.load() == 1; }),
              "the proxy to see the client's RST_STREAM");
  {
    std::lock_guard lock(mu);
    open = true;
  }
  cv.notify_all();
  expect_that(Eventually([&] { return f.director.finalized().size() == 1; }), "the route's finalizer to run");
  ExpectCode(f.director.finalized()[0], grpc::StatusCode::CANCELLED);
  expect_that(f.backend->CallCount() == 0, "no upstream call after the client left");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "the proxied call to end");
}

void test_upstream_ends_while_client_streams(void**) {
  // The backend fails after the first message while the client would keep
  // streaming: the client gets the status without having to half-close.
  Fixture f;
  BlockingCall call(f.ProxyChannel(), kFail);
  expect_that(call.Write("x"), "write");
  expect_that(!call.Read().has_value(), "no response");
  ExpectCode(call.Finish(), grpc::StatusCode::FAILED_PRECONDITION);
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "the proxied call to end");
}

void test_proxy_shutdown_mid_call(void**) {
  Fixture f;
  BlockingCall call(f.ProxyChannel(), kHang);
  expect_that(call.Write("x"), "write");
  expect_that(Eventually([&] { return f.backend->CallCount() == 1; }), "the call to reach the backend");
  f.ShutdownProxy();
  grpc::Status st = call.Finish();
  expect_that(!st.ok(), "the client to see the call fail, got " + Describe(st));
  expect_that(Eventually([&] { return f.backend->Calls()[0].cancelled; }), "the backend call to be cancelled");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "the proxied call to end");
  expect_that(f.director.finalized().size() == 1, "the finalizer to run once");
}

}  // namespace

// The Route's commit holds the client's status until it answers, from
// another thread, and may replace it; it is not called without an upstream
// call.
void test_commit_holds_and_replaces_the_status(void**) {
  Fixture f;
  std::mutex mu;
  std::vector<grpc::Status> committed;
  std::vector<std::thread> threads;
  std::atomic<bool> release{false};
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route = f.BackendRoute();
    const bool replace = seen.first_message == std::optional<std::string>("replace");
    route.commit = [&, replace](const praefect::Status& st, Route::CommitDone done) {
      std::lock_guard lock(mu);
      committed.push_back(grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message()));
      threads.emplace_back([&release, replace, done = std::move(done)] {
        while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (replace) {
          done(praefect::Status(praefect::StatusCode::kUnavailable, "write not recorded"));
        } else {
          done(std::nullopt);
        }
        done(praefect::Status(praefect::StatusCode::kInternal, "a second answer is ignored"));
      });
    };
    return route;
  });
  // While the commit has not answered, the client has no status.
  BlockingCall held(f.ProxyChannel(), kEcho);
  assert_true(held.Write("keep"));
  held.WritesDone();
  assert_true(held.Read() == std::optional<std::string>("keep"));
  expect_that(Eventually([&] {
                std::lock_guard lock(mu);
                return committed.size() == 1;
              }),
              "the commit to be called once the upstream ended");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    release = true;
  });
  grpc::Status kept = held.Finish();
  releaser.join();
  expect_that(kept.ok(), "done(nullopt) keeps the upstream's OK, got " + Describe(kept));

  CallResult replaced = RunCall(f.ProxyChannel(), kEcho, {"replace"});
  ExpectCode(replaced.status, grpc::StatusCode::UNAVAILABLE);
  expect_that(replaced.status.error_message() == "write not recorded", Describe(replaced.status));
  expect_that(replaced.responses == std::vector<std::string>{"replace"}, "the responses before the status");

  // A director error: no upstream call, no commit.
  f.director.set_decide([](const TestDirector::Seen&) -> StatusOr<Route> { return NotFound("no"); });
  CallResult refused = RunCall(f.ProxyChannel(), kEcho, {"x"});
  ExpectCode(refused.status, grpc::StatusCode::NOT_FOUND);
  {
    std::lock_guard lock(mu);
    expect_that(committed.size() == 2, "one commit per forwarded call, none for a refused one");
  }
  for (auto& t : threads) t.join();
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_details_and_trailers_pass_through),
      cmocka_unit_test(test_initial_metadata_with_error),
      cmocka_unit_test(test_director_error_is_returned_as_is),
      cmocka_unit_test(test_refused_at_admission_reads_nothing),
      cmocka_unit_test(test_local_response),
      cmocka_unit_test(test_director_dropping_done),
      cmocka_unit_test(test_invalid_routes),
      cmocka_unit_test(test_upstream_unavailable_names_label),
      cmocka_unit_test(test_deadline_reaches_backend),
      cmocka_unit_test(test_deadlines_on_a_ready_connection),
      cmocka_unit_test(test_no_deadline_stays_none),
      cmocka_unit_test(test_client_cancel_reaches_backend),
      cmocka_unit_test(test_client_cancel_mid_stream_is_not_a_half_close),
      cmocka_unit_test(test_cancel_while_directing),
      cmocka_unit_test(test_upstream_ends_while_client_streams),
      cmocka_unit_test(test_proxy_shutdown_mid_call),
      cmocka_unit_test(test_commit_holds_and_replaces_the_status),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
