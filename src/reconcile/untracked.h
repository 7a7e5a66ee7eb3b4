#pragma once

#include <grpcpp/channel.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "datastore/tracking_store.h"

// The repositories on a node's disk that the database does not know: what
// `praefect list-untracked-repositories`, the repository cleanup daemon and
// `praefect maintenance` report (reference background-work.md §6,
// operator-commands.md §8). Nothing here deletes anything.
namespace praefect::reconcile {

struct UntrackedWalk {
  std::string virtual_storage;
  std::string storage;  // the node's storage name
  std::string address;  // for messages
  std::string token;    // what the call to the node is signed with ("" none)
  std::shared_ptr<grpc::Channel> channel;
  // Repositories modified at or after this are left out (one being created
  // is on disk before it is recorded).
  std::chrono::system_clock::time_point cutoff;
  size_t batch = 16;  // paths asked about per database query, as Praefect
  // A node that sends nothing for this long (hung, or its disk stuck) ends
  // the walk with DEADLINE_EXCEEDED instead of holding it forever.
  std::chrono::milliseconds stall{std::chrono::seconds(30)};
};

// Streams InternalGitaly/WalkRepos of the walk's storage and calls `found`
// with the replica path of each repository older than the cutoff that no
// repository of the virtual storage records a replica of on that storage,
// in the node's order. `between` runs before each database query; a
// non-OK Status from it or from `found` ends the walk with that Status. A
// failed walk: "walking storage "S" at ADDRESS: rpc error: ...".
Status WalkUntracked(const UntrackedWalk& walk, datastore::TrackingStore* store,
                     const std::function<Status(const std::string& replica_path)>& found,
                     const std::function<Status()>& between = nullptr);

}  // namespace praefect::reconcile
