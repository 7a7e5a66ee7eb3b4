// Route::secondaries: one request stream to several backends (a
// transaction's voters), only the upstream's answer to the client, the
// commit after every secondary ended, and what a failure on either side
// does to the others.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "plane_harness.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;
using praefect::http2::ConnectTarget;
using praefect::http2::Route;
using praefect::http2::Upstream;
using namespace praefect::http2::testing;

namespace {

const std::string kCollect = "/test.Backend/Collect";
const std::string kStream = "/test.Backend/Stream";
const std::string kHang = "/test.Backend/Hang";

// Two more backends beside the fixture's, and what the route heard of them.
struct Secondaries {
  explicit Secondaries(Fixture& f) {
    for (int i = 0; i < 2; ++i) {
      const std::string path = f.dir() + "/secondary-" + std::to_string(i) + ".sock";
      backends.push_back(std::make_unique<Backend>(path));
      auto upstream = std::make_shared<Upstream>();
      upstream->target.kind = ConnectTarget::Kind::kUnix;
      upstream->target.path = path;
      upstream->authority = "localhost";
      upstream->label = "secondary " + std::to_string(i);
      upstreams.push_back(upstream);
    }
  }

  // The fixture's route with both secondaries; `first` is what secondary i
  // gets as its first message ("<i>:" + the client's), `broken` replaces
  // secondary 1's address by one nobody listens on.
  Route Make(Fixture& f, const TestDirector::Seen& seen, bool broken = false) {
    Route route = f.BackendRoute();
    for (size_t i = 0; i < upstreams.size(); ++i) {
      Route::Secondary s;
      s.upstream = upstreams[i];
      if (broken && i == 1) {
        auto nowhere = std::make_shared<Upstream>(*upstreams[i]);
        nowhere->target.path = f.dir() + "/nobody.sock";
        s.upstream = nowhere;
      }
      s.label = upstreams[i]->label;
      s.first_message = std::to_string(i) + ":" + seen.first_message.value_or("");
      s.set_metadata.emplace_back("x-voter", std::to_string(i));
      route.secondaries.push_back(std::move(s));
    }
    route.set_metadata.emplace_back("x-voter", "primary");
    route.secondary_finished = [this](size_t index, const Status& st) {
      std::lock_guard lock(mu);
      finished.emplace_back(index, st.code());
    };
    route.commit = [this](const Status& st, Route::CommitDone done) {
      {
        std::lock_guard lock(mu);
        commit_saw_finished = finished.size();
        commit_code = st.code();
        ++commits;
      }
      done(std::nullopt);
    };
    return route;
  }

  // Points secondary 1 at the hung node of HungNode(f.dir() + "/hung.sock").
  void SendToHungNode(Fixture& f, Route* route) {
    auto to_hung = std::make_shared<Upstream>(*route->secondaries[1].upstream);
    to_hung->target.path = f.dir() + "/hung.sock";
    route->secondaries[1].upstream = to_hung;
  }

  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<std::shared_ptr<const Upstream>> upstreams;
  std::mutex mu;
  std::vector<std::pair<size_t, StatusCode>> finished;
  size_t commit_saw_finished = 0;
  StatusCode commit_code = StatusCode::kUnknown;
  int commits = 0;
};

void test_every_node_gets_the_stream(void**) {
  Fixture f;
  Secondaries s(f);
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> { return s.Make(f, seen); });
  CallResult r = RunCall(f.ProxyChannel(), kCollect, {"a", "bb", std::string(300000, 'c')});
  expect_that(r.status.ok(), "the call to succeed: " + r.status.error_message());
  expect_that(r.responses == std::vector<std::string>{"3:a|bb|" + std::string(300000, 'c')},
              "the client to get the upstream's answer only");
  auto primary = f.backend->Calls();
  expect_that(primary.size() == 1 && Values(primary[0].metadata, "x-voter") == std::vector<std::string>{"primary"},
              "the upstream to get its own metadata");
  for (size_t i = 0; i < 2; ++i) {
    auto calls = s.backends[i]->Calls();
    expect_that(calls.size() == 1, "secondary " + std::to_string(i) + " to be called once");

    expect_that(calls[0].messages.size() == 3 && calls[0].messages[0] == std::to_string(i) + ":a" &&
                    calls[0].messages[1] == "bb" && calls[0].messages[2] == std::string(300000, 'c'),
                "secondary " + std::to_string(i) + " to get its first message and the client's others");
    expect_that(calls[0].half_closed, "the half-close to reach secondary " + std::to_string(i));
    expect_that(Values(calls[0].metadata, "x-voter") == std::vector<std::string>{std::to_string(i)},
                "secondary " + std::to_string(i) + " to get its own metadata");
  }
  std::lock_guard lock(s.mu);
  expect_that(s.commits == 1 && s.commit_code == StatusCode::kOk, "one commit with the upstream's OK");
  expect_that(s.commit_saw_finished == 2, "the commit to run after both secondaries ended");
  for (const auto& [index, code] : s.finished)
    expect_that(code == StatusCode::kOk, "secondary " + std::to_string(index) + " to end OK");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "no call left active");
  expect_that(f.server->stats().bytes_held.load() == 0, "nothing left held");
}

void test_server_stream_of_a_secondary_is_dropped(void**) {
  Fixture f;
  Secondaries s(f);
  // The secondaries' first message does not parse as "<n> <size>" for
  // them... so give them the client's own: each streams 200 x 10 KiB back,
  // which must be read and dropped without holding the call.
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route = s.Make(f, seen);
    for (auto& secondary : route.secondaries) secondary.first_message = *seen.first_message;
    return route;
  });
  CallResult r = RunCall(f.ProxyChannel(), kStream, {"200 10240"});
  expect_that(r.status.ok(), "the call to succeed: " + r.status.error_message());
  expect_that(r.responses.size() == 200, "the client to get the upstream's 200 messages only, got " +
                                             std::to_string(r.responses.size()));
  std::lock_guard lock(s.mu);
  expect_that(s.commit_saw_finished == 2, "the secondaries to end before the commit");
}

void test_a_secondary_that_cannot_be_reached(void**) {
  Fixture f;
  Secondaries s(f);
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> { return s.Make(f, seen, true); });
  CallResult r = RunCall(f.ProxyChannel(), kCollect, {"x", "y"});
  expect_that(r.status.ok(), "a secondary's failure not to fail the call: " + r.status.error_message());
  expect_that(s.backends[0]->CallCount() == 1, "the reachable secondary to be called");
  std::lock_guard lock(s.mu);
  bool unavailable = false;
  for (const auto& [index, code] : s.finished) unavailable |= index == 1 && code == StatusCode::kUnavailable;
  expect_that(unavailable, "the unreachable secondary to be reported UNAVAILABLE");
  expect_that(s.commits == 1 && s.commit_saw_finished == 2, "the commit after both");
}

void test_upstream_failure_cancels_the_secondaries(void**) {
  Fixture f;
  Secondaries s(f);
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route = s.Make(f, seen);
    auto nowhere = std::make_shared<Upstream>(*route.upstream);
    nowhere->target.path = f.dir() + "/nobody.sock";
    route.upstream = nowhere;
    return route;
  });
  // The secondaries would hang forever: the upstream's failure ends them.
  BlockingCall call(f.ProxyChannel(), kHang);
  expect_that(call.Write("x"), "the request to be written");
  grpc::Status st = call.Finish();
  expect_that(st.error_code() == grpc::StatusCode::UNAVAILABLE, "the upstream's failure to be the client's");
  expect_that(Eventually([&] {
                std::lock_guard lock(s.mu);
                return s.finished.size() == 2;
              }),
              "both secondaries to be ended");
  expect_that(Eventually([&] {
                for (auto& b : s.backends) {
                  auto calls = b->Calls();
                  if (!calls.empty() && !calls[0].cancelled) return false;
                }
                return true;
              }),
              "every secondary call that started to be cancelled");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "no call left active");
}

// A socket that takes connections and never speaks: a hung node.
int HungNode(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 16) != 0)
    fail_msg("cannot listen on %s", path.c_str());
  return fd;
}

void test_a_secondary_that_never_ends_is_cut_after_the_grace(void**) {
  Fixture f;
  Secondaries s(f);
  const int hung = HungNode(f.dir() + "/hung.sock");
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route = s.Make(f, seen);
    s.SendToHungNode(f, &route);
    route.secondary_grace = std::chrono::milliseconds(300);
    return route;
  });
  const auto start = std::chrono::steady_clock::now();
  CallResult r = RunCall(f.ProxyChannel(), kCollect, {"x", "y"});
  const auto took = std::chrono::steady_clock::now() - start;
  expect_that(r.status.ok(), "the call to succeed: " + r.status.error_message());
  expect_that(r.responses == std::vector<std::string>{"2:x|y"}, "the upstream's answer");
  expect_that(took < std::chrono::seconds(10), "the hung secondary to be cut, not waited for");
  std::lock_guard lock(s.mu);
  expect_that(s.commits == 1 && s.commit_saw_finished == 2, "the commit once both secondaries ended");
  bool cut = false;
  for (const auto& [index, code] : s.finished) cut |= index == 1 && code != StatusCode::kOk;
  expect_that(cut, "the hung secondary to be reported failed");
  close(hung);
}

void test_unwanted_secondary_is_cut_at_once(void**) {
  Fixture f;
  Secondaries s(f);
  const int hung = HungNode(f.dir() + "/hung.sock");
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route = s.Make(f, seen);
    s.SendToHungNode(f, &route);
    route.secondary_grace = std::chrono::seconds(60);
    route.wait_for_secondary = [](size_t index) { return index == 0; };
    return route;
  });
  CallResult r = RunCall(f.ProxyChannel(), kCollect, {"x"}, [](grpc::ClientContext* ctx) {
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(8));
  });
  std::lock_guard lock(s.mu);
  expect_that(r.status.ok(), "the call to succeed: " + r.status.error_message());
  expect_that(s.commits == 1 && s.commit_saw_finished == 2, "the commit without waiting the 60 s grace");
  close(hung);
}

void test_a_secondary_that_stops_reading_is_cut(void**) {
  Fixture f;
  Secondaries s(f);
  const int hung = HungNode(f.dir() + "/hung.sock");
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route = s.Make(f, seen);
    s.SendToHungNode(f, &route);
    route.secondary_stall = std::chrono::milliseconds(300);
    route.secondary_grace = std::chrono::milliseconds(300);
    return route;
  });
  // 4 MiB: far more than the hung node's stream window and the call's
  // high-water mark, so it holds the stream back until it is cut.
  std::vector<std::string> requests(16, std::string(256 * 1024, 'p'));
  const auto start = std::chrono::steady_clock::now();
  CallResult r = RunCall(f.ProxyChannel(), "/test.Backend/Count", requests);
  const auto took = std::chrono::steady_clock::now() - start;
  expect_that(r.status.ok(), "the call to succeed: " + r.status.error_message());
  expect_that(r.responses == std::vector<std::string>{"16 4194304"}, "the upstream to get every byte");
  expect_that(took < std::chrono::seconds(10), "the stalled secondary to be cut, not waited for");
  std::lock_guard lock(s.mu);
  bool cut = false;
  for (const auto& [index, code] : s.finished) cut |= index == 1 && code == StatusCode::kDeadlineExceeded;
  expect_that(cut, "the stalled secondary to be reported DEADLINE_EXCEEDED");
  close(hung);
}

void test_abort_ends_the_call_and_every_node(void**) {
  Fixture f;
  Secondaries s(f);
  auto abort = std::make_shared<praefect::http2::CallAbort>();
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> {
    Route route = s.Make(f, seen);
    route.abort = abort;
    return route;
  });
  BlockingCall call(f.ProxyChannel(), kHang);
  expect_that(call.Write("x"), "the request to be written");
  expect_that(Eventually([&] {
                return f.backend->CallCount() == 1 && s.backends[0]->CallCount() == 1 &&
                       s.backends[1]->CallCount() == 1;
              }),
              "all three nodes to be called");
  std::thread([abort] { abort->Abort(praefect::Unavailable("the primary stopped answering")); }).join();
  grpc::Status st = call.Finish();
  expect_that(st.error_code() == grpc::StatusCode::UNAVAILABLE && st.error_message() == "test backend: the primary stopped answering",
              "the client to get the abort's status, got " + st.error_message());
  expect_that(Eventually([&] {
                return f.backend->Calls()[0].cancelled && s.backends[0]->Calls()[0].cancelled &&
                       s.backends[1]->Calls()[0].cancelled;
              }),
              "every node's call to be cancelled");
  std::lock_guard lock(s.mu);
  expect_that(s.commits == 0, "no commit for an aborted call");
  abort->Abort(praefect::Unavailable("again"));  // harmless once over
}

void test_client_cancel_ends_everything(void**) {
  Fixture f;
  Secondaries s(f);
  f.director.set_decide([&](const TestDirector::Seen& seen) -> StatusOr<Route> { return s.Make(f, seen); });
  {
    BlockingCall call(f.ProxyChannel(), kHang);
    expect_that(call.Write("x"), "the request to be written");
    expect_that(Eventually([&] {
                  return f.backend->CallCount() == 1 && s.backends[0]->CallCount() == 1 &&
                         s.backends[1]->CallCount() == 1;
                }),
                "all three nodes to be called");
    call.Cancel();
    call.Finish();
  }
  expect_that(Eventually([&] {
                std::lock_guard lock(s.mu);
                return s.finished.size() == 2;
              }),
              "both secondaries to be ended");
  expect_that(Eventually([&] {
                return f.backend->Calls()[0].cancelled && s.backends[0]->Calls()[0].cancelled &&
                       s.backends[1]->Calls()[0].cancelled;
              }),
              "every node's call to be cancelled");
  expect_that(Eventually([&] { return f.server->stats().calls_active.load() == 0; }), "no call left active");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_node_gets_the_stream),
      cmocka_unit_test(test_server_stream_of_a_secondary_is_dropped),
      cmocka_unit_test(test_a_secondary_that_cannot_be_reached),
      cmocka_unit_test(test_upstream_failure_cancels_the_secondaries),
      cmocka_unit_test(test_a_secondary_that_never_ends_is_cut_after_the_grace),
      cmocka_unit_test(test_unwanted_secondary_is_cut_at_once),
      cmocka_unit_test(test_a_secondary_that_stops_reading_is_cut),
      cmocka_unit_test(test_abort_ends_the_call_and_every_node),
      cmocka_unit_test(test_client_cancel_ends_everything),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
