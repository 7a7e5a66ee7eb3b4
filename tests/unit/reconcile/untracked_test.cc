// The walk of a node's storage for repositories the database does not know
// (reconcile/untracked.h), against an in-process InternalGitaly: the paths
// the database does not know are reported, young ones left out, and a node
// that stops answering in the middle of its stream ends the walk with
// DEADLINE_EXCEEDED after the stall limit instead of holding it forever.
#include "reconcile/untracked.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "praefect/internal.grpc.pb.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;
using praefect::reconcile::UntrackedWalk;
using praefect::reconcile::WalkUntracked;

namespace {

// Streams a.git, b.git (old), c.git (new); with `hang`, then sends nothing
// until released.
class Node final : public gitaly::InternalGitaly::Service {
 public:
  grpc::Status WalkRepos(grpc::ServerContext* context, const gitaly::WalkReposRequest*,
                         grpc::ServerWriter<gitaly::WalkReposResponse>* writer) override {
    const auto now = std::chrono::system_clock::now();
    for (const auto& [path, age] : {std::pair<const char*, int>{"a.git", 48}, {"b.git", 48}, {"c.git", 0}}) {
      gitaly::WalkReposResponse r;
      r.set_relative_path(path);
      r.mutable_modification_time()->set_seconds(
          std::chrono::duration_cast<std::chrono::seconds>((now - std::chrono::hours(age)).time_since_epoch()).count());
      writer->Write(r);
    }
    while (hang && !context->IsCancelled() && !released) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return grpc::Status::OK;
  }
  std::atomic<bool> hang{false};
  std::atomic<bool> released{false};
};

// Knows b.git.
class Records final : public praefect::datastore::TrackingStore {
 public:
  StatusOr<bool> DeleteRepositoryRecord(std::string_view, std::string_view) override { return false; }
  StatusOr<int64_t> RemoveReplicationJobs(std::string_view, std::string_view, bool) override { return int64_t{0}; }
  StatusOr<bool> EnqueueUpdate(int64_t, std::string_view, std::string_view, std::string_view) override {
    return false;
  }
  StatusOr<std::vector<std::string>> UntrackedReplicaPaths(std::string_view, std::string_view,
                                                           const std::vector<std::string>& paths) override {
    std::vector<std::string> out;
    for (const auto& p : paths) {
      if (p != "b.git") out.push_back(p);
    }
    return out;
  }
};

struct Fixture {
  Fixture() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&node);
    server = builder.BuildAndStart();
    walk.virtual_storage = "default";
    walk.storage = "gitaly-1";
    walk.address = "tcp://127.0.0.1:" + std::to_string(port);
    walk.channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
    walk.cutoff = std::chrono::system_clock::now() - std::chrono::hours(24);
    walk.batch = 16;
  }
  ~Fixture() {
    node.released = true;
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  Node node;
  Records records;
  std::unique_ptr<grpc::Server> server;
  UntrackedWalk walk;
};

void TheUnknownOldRepositoriesAreReported(void**) {
  Fixture f;
  std::set<std::string> found;
  Status st = WalkUntracked(f.walk, &f.records, [&](const std::string& path) {
    found.insert(path);
    return Status::Ok();
  });
  assert_status_ok(st);
  expect_that(found == std::set<std::string>{"a.git"}, "a.git only: b.git is known, c.git too young");
}

void AWalkTheNodeStopsAnsweringEnds(void**) {
  Fixture f;
  f.node.hang = true;
  f.walk.stall = std::chrono::milliseconds(500);
  const auto started = std::chrono::steady_clock::now();
  Status st = WalkUntracked(f.walk, &f.records, [](const std::string&) { return Status::Ok(); });
  const auto took = std::chrono::steady_clock::now() - started;
  expect_that(st.code() == StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED, got " + st.ToString());
  expect_that(st.message() == "walking storage \"gitaly-1\" at " + f.walk.address +
                                   ": no answer for 500ms: is the node hung? (praefect -config FILE dial-nodes)",
              st.message());
  expect_that(took < std::chrono::seconds(5), "ended soon after the stall limit");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TheUnknownOldRepositoriesAreReported),
      cmocka_unit_test(AWalkTheNodeStopsAnsweringEnds),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
