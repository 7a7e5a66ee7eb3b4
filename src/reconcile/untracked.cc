#include "reconcile/untracked.h"

#include <grpcpp/grpcpp.h>

#include <vector>

#include "auth/token.h"
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
  gitaly::WalkReposResponse response;
  Status ended = Status::Ok();
  while (reader->Read(&response)) {
    if (!(ModifiedAt(response) < walk.cutoff)) continue;
    batch.push_back(response.relative_path());
    if (batch.size() >= walk.batch) {
      ended = check();
      if (!ended.ok()) break;
    }
  }
  if (!ended.ok()) {
    ctx.TryCancel();
    (void)reader->Finish();
    return ended;
  }
  grpc::Status st = reader->Finish();
  if (!st.ok())
    return Status(static_cast<StatusCode>(st.error_code()),
                  "walking storage " + JsonQuote(walk.storage) + " at " + walk.address + ": rpc error: code = " +
                      GoCodeName(static_cast<int>(st.error_code())) + " desc = " + st.error_message());
  return check();
}

}  // namespace praefect::reconcile
