#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"
#include "datastore/datastore.h"
#include "nodes/health_manager.h"
#include "nodes/node_set.h"

// Where each call on a registered repository goes. Writes go to the
// repository's primary, elected per repository in the datastore (or the
// configured `primary = true` node in the legacy mode, failover.enabled =
// false); reads go to a random node that this praefect sees healthy and that
// holds the repository's latest generation; a repository with no such node
// is unavailable rather than served stale.
namespace praefect::routing {

struct Options {
  // false: the legacy single-primary mode: every write goes to the virtual
  // storage's configured primary; nothing is elected.
  bool per_repository = true;
  std::chrono::milliseconds window = std::chrono::seconds(10);  // the quorum window of elections
  // How long a write waits for this praefect's health checks to be
  // recorded when they are not (HealthManager::AwaitRecorded): after a
  // database outage, the first writes wait for the round instead of failing.
  std::chrono::milliseconds await_health = std::chrono::seconds(2);
  // Called after each election this praefect made that changed a
  // repository's primary: the virtual storage and the storage elected (""
  // when the repository was left without a primary). May be empty.
  std::function<void(std::string_view virtual_storage, std::string_view storage)> on_election;
};

// Where a new repository goes.
struct Creation {
  const nodes::Node* primary = nullptr;
  std::vector<std::string> assigned;  // empty: no replication factor, every node
  std::vector<std::string> outdated;  // the other replicas: each gets an update job
};

// Thread-safe; the pointees must outlive it. `health` may be null (the local
// view then picks a new repository's node, and elections do not wait for
// this praefect's health checks to be recorded).
class RepositoryRouter {
 public:
  RepositoryRouter(datastore::Datastore* store, nodes::HealthManager* health, Options options);

  // The primary for a write, a maintenance call or a primary-only read on
  // `repo`, electing one when needed (a datastore round trip). UNAVAILABLE
  // naming the repository and why when there is none, and when this
  // praefect's own health checks are not recorded (see
  // HealthManager::AwaitRecorded): nothing is elected then.
  [[nodiscard]] StatusOr<const nodes::Node*> RouteWrite(const nodes::VirtualStorage& vs,
                                                        const datastore::RepositoryMetadata& repo) const;

  // A random locally healthy node at `repo`'s latest generation (no
  // datastore round trip). UNAVAILABLE when there is none.
  [[nodiscard]] StatusOr<const nodes::Node*> RouteRead(const nodes::VirtualStorage& vs,
                                                       const datastore::RepositoryMetadata& repo) const;

  // The node that creates a new repository (a random node healthy by
  // quorum, or the configured primary in the legacy mode), and its
  // assignments when the virtual storage has a replication factor.
  [[nodiscard]] StatusOr<Creation> RouteCreate(const nodes::VirtualStorage& vs) const;

  // The replicas a write on `primary` leaves outdated: every other assigned
  // storage (every other node without assignments).
  std::vector<std::string> ReplicationTargets(const nodes::VirtualStorage& vs,
                                              const datastore::RepositoryMetadata& repo,
                                              const nodes::Node& primary) const;

  const Options& options() const { return options_; }

 private:
  datastore::Datastore* store_;
  nodes::HealthManager* health_;
  const Options options_;
};

}  // namespace praefect::routing
