#include "reconcile/untracked.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "auth/token.h"
#include "common/duration.h"
#include "common/json.h"
#include "praefect/internal.grpc.pb.h"

namespace praefect::reconcile {
namespace {

std::chrono::system_clock::time_point ModifiedAt(const gitaly::WalkReposResponse& response) {
  return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
      std::chrono::seconds(response.modification_time().seconds()) +
      std::chrono::nanoseconds(response.modification_time().nanos())));
}

}  // namespace

Status WalkUntracked(const UntrackedWalk& walk, datastore::TrackingStore* store,
                     const std::function<Status(const std::string& replica_path)>& found,
                     const std::function<Status()>& between) {
  grpc::ClientContext ctx;
  if (!walk.token.empty())
    ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                    auth::BearerV2(walk.token, std::chrono::system_clock::now()));
  gitaly::WalkReposRequest request;
  request.set_storage_name(walk.storage);
  auto reader = gitaly::InternalGitaly::NewStub(walk.channel)->WalkRepos(&ctx, request);

  std::vector<std::string> batch;
  auto check = [&]() -> Status {
    if (batch.empty()) return Status::Ok();
    if (between) {
      if (Status st = between(); !st.ok()) return st;
    }
    auto untracked = store->UntrackedReplicaPaths(walk.virtual_storage, walk.storage, batch);
    batch.clear();
    if (!untracked.ok())
      return Status(untracked.status().code(), "existence check: " + untracked.status().message());
    for (const std::string& path : *untracked) {
      if (Status st = found(path); !st.ok()) return st;
    }
    return Status::Ok();
  };
  // The watchdog: a node silent for `stall` (our own database queries not
  // counted) has its walk cancelled.
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;  // GUARDED_BY(mu)
  bool stalled = false;   // GUARDED_BY(mu)
  auto heard = std::chrono::steady_clock::now();
  auto progress = [&] {
    std::lock_guard lock(mu);
    heard = std::chrono::steady_clock::now();
  };
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return finished; })) {
      if (std::chrono::steady_clock::now() - heard >= walk.stall) {
        stalled = true;
        ctx.TryCancel();
        return;
      }
    }
  });
  gitaly::WalkReposResponse response;
  Status ended = Status::Ok();
  while (reader->Read(&response)) {
    progress();
    if (!(ModifiedAt(response) < walk.cutoff)) continue;
    batch.push_back(response.relative_path());
    if (batch.size() >= walk.batch) {
      ended = check();
      progress();
      if (!ended.ok()) break;
    }
  }
  if (!ended.ok()) ctx.TryCancel();
  grpc::Status st = reader->Finish();
  {
    std::lock_guard lock(mu);
    finished = true;
  }
  cv.notify_all();
  watchdog.join();
  if (!ended.ok()) return ended;
  if (stalled)
    return DeadlineExceeded("walking storage " + JsonQuote(walk.storage) + " at " + walk.address + ": no answer for " + FormatGoDuration(walk.stall) +
                            ": is the node hung? (praefect -config FILE dial-nodes)");
  if (!st.ok())
    return Status(static_cast<StatusCode>(st.error_code()),
                  "walking storage " + JsonQuote(walk.storage) + " at " + walk.address + ": rpc error: code = " +
                      GoCodeName(static_cast<int>(st.error_code())) + " desc = " + st.error_message());
  return check();
}

}  // namespace praefect::reconcile
