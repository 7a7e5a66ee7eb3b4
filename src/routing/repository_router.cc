#include "routing/repository_router.h"

#include <algorithm>
#include <random>

#include "log/log.h"

namespace praefect::routing {
namespace {

size_t RandomIndex(size_t n) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_int_distribution<size_t>(0, n - 1)(rng);
}

std::string Describe(const nodes::VirtualStorage& vs, const datastore::RepositoryMetadata& repo) {
  return "repository \"" + repo.relative_path + "\" in virtual storage \"" + vs.name + "\"";
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

RepositoryRouter::RepositoryRouter(datastore::Datastore* store, nodes::HealthManager* health,
                                   Options options)
    : store_(store), health_(health), options_(options) {}

StatusOr<const nodes::Node*> RepositoryRouter::RouteWrite(const nodes::VirtualStorage& vs,
                                                          const datastore::RepositoryMetadata& repo) const {
  if (!options_.per_repository) {
    const nodes::Node& primary = vs.Primary();
    if (!primary.healthy.load())
      return Unavailable(Describe(vs, repo) + ": its primary \"" + primary.storage +
                         "\" is unhealthy and failover is disabled ([failover] enabled = false): bring the node "
                         "back, or set primary = true on another node and restart praefect");
    return &primary;
  }
  if (health_ != nullptr) {
    if (Status st = health_->AwaitRecorded(options_.await_health); !st.ok())
      return Unavailable(Describe(vs, repo) + ": its primary is not looked up: " + st.message());
  }
  auto election = store_->GetPrimary(repo.repository_id, options_.window);
  if (!election.ok()) {
    if (election.status().code() == StatusCode::kNotFound)
      return NotFound(Describe(vs, repo) + " is no longer registered");
    return Unavailable(Describe(vs, repo) + ": cannot look up its primary: " + election.status().message());
  }
  if (election->changed) {
    if (options_.on_election) options_.on_election(vs.name, election->primary);
    if (election->primary.empty()) {
      log::Warn("repository has no primary: no valid candidate", {{"virtual_storage", vs.name},
                                                                  {"relative_path", repo.relative_path},
                                                                  {"previous", election->previous},
                                                                  {"reason", election->reason}});
    } else {
      log::Info("primary elected", {{"virtual_storage", vs.name},
                                    {"relative_path", repo.relative_path},
                                    {"previous", election->previous},
                                    {"primary", election->primary}});
    }
  }
  if (election->primary.empty())
    return Unavailable(Describe(vs, repo) + " has no primary: " + election->reason +
                       "; writes resume once a node holding its latest generation is healthy again");
  const nodes::Node* node = vs.FindNode(election->primary);
  if (node == nullptr)
    return Unavailable(Describe(vs, repo) + ": its primary \"" + election->primary +
                       "\" is not a node of this praefect's configuration: make every praefect's "
                       "[[virtual_storage.node]] list the same");
  return node;
}

StatusOr<const nodes::Node*> RepositoryRouter::RouteRead(const nodes::VirtualStorage& vs,
                                                         const datastore::RepositoryMetadata& repo) const {
  std::vector<const nodes::Node*> candidates;
  std::vector<std::string> up_to_date = repo.UpToDate();
  for (const auto& storage : up_to_date) {
    const nodes::Node* n = vs.FindNode(storage);
    if (n != nullptr && n->healthy.load()) candidates.push_back(n);
  }
  if (candidates.empty()) {
    std::string list;
    for (const auto& s : up_to_date) list += (list.empty() ? "" : ", ") + s;
    return Unavailable(Describe(vs, repo) + " is unavailable: no healthy node holds its latest generation " +
                       std::to_string(repo.generation) + " (up to date: " + (list.empty() ? "none" : list) +
                       "); it is not served from outdated replicas");
  }
  return candidates[RandomIndex(candidates.size())];
}

StatusOr<Creation> RepositoryRouter::RouteCreate(const nodes::VirtualStorage& vs) const {
  Creation out;
  if (!options_.per_repository) {
    out.primary = &vs.Primary();
    if (!out.primary->healthy.load())
      return Unavailable("virtual storage \"" + vs.name + "\": its primary \"" + out.primary->storage +
                         "\" is unhealthy and failover is disabled ([failover] enabled = false): bring the node "
                         "back, or set primary = true on another node and restart praefect");
  } else {
    std::vector<std::string> healthy;
    if (health_ != nullptr) {
      healthy = health_->QuorumHealthy(vs.name);
    } else {
      for (const auto& n : vs.nodes) {
        if (n->healthy.load()) healthy.push_back(n->storage);
      }
    }
    std::vector<const nodes::Node*> candidates;
    for (const auto& n : vs.nodes) {
      // Healthy by quorum, and reachable from here: the call is ours to make.
      if (Contains(healthy, n->storage) && n->healthy.load()) candidates.push_back(n.get());
    }
    if (candidates.empty())
      return Unavailable("virtual storage \"" + vs.name +
                         "\": no healthy node to create the repository on (check the nodes with `praefect -config "
                         "FILE dial-nodes`)");
    out.primary = candidates[RandomIndex(candidates.size())];
  }
  std::vector<std::string> configured;
  for (const auto& n : vs.nodes) configured.push_back(n->storage);
  if (vs.replication_factor > 0 && static_cast<size_t>(vs.replication_factor) < configured.size()) {
    out.assigned = datastore::PickAssignments({out.primary->storage}, configured, out.primary->storage,
                                              vs.replication_factor);
  }
  for (const auto& n : vs.nodes) {
    if (n.get() == out.primary) continue;
    if (out.assigned.empty() || Contains(out.assigned, n->storage)) out.outdated.push_back(n->storage);
  }
  return out;
}

std::vector<std::string> RepositoryRouter::ReplicationTargets(const nodes::VirtualStorage& vs,
                                                              const datastore::RepositoryMetadata& repo,
                                                              const nodes::Node& primary) const {
  std::vector<std::string> out;
  for (const auto& n : vs.nodes) {
    if (n.get() != &primary && repo.IsAssigned(n->storage)) out.push_back(n->storage);
  }
  return out;
}

}  // namespace praefect::routing
