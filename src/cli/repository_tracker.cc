#include "cli/repository_tracker.h"

#include <algorithm>
#include <ostream>
#include <random>

#include "auth/token.h"
#include "cli/go_command.h"
#include "cli/operator_db.h"
#include "nodes/node_set.h"
#include "replication/replicator.h"
#include "repository-service.grpc.pb.h"

namespace praefect::cli {
namespace {

const config::VirtualStorage* FindVirtualStorage(const config::Config& config, std::string_view name) {
  for (const auto& vs : config.virtual_storages)
    if (vs.name == name) return &vs;
  return nullptr;
}

// The virtual storage's other storages; with a default replication factor
// RF, a random RF - 1 of them.
std::vector<std::string> PickSecondaries(const config::VirtualStorage& vs, const std::string& primary) {
  std::vector<std::string> secondaries;
  for (const auto& node : vs.nodes)
    if (node.storage != primary) secondaries.push_back(node.storage);
  if (vs.default_replication_factor > 0) {
    std::mt19937_64 rng(std::random_device{}());
    std::shuffle(secondaries.begin(), secondaries.end(), rng);
    secondaries.resize(std::min(secondaries.size(), static_cast<size_t>(vs.default_replication_factor - 1)));
  }
  return secondaries;
}

Status Prefixed(const Status& st) { return Status(st.code(), std::string(kTrackErrorPrefix) + ": " + st.message()); }

// Records the repository; its id (the existing one when it is tracked
// already, after Praefect's message).
StatusOr<int64_t> Record(datastore::PostgresDatastore* store, const TrackRequest& request,
                         const std::vector<std::string>& secondaries, bool replication_factor, std::ostream& out) {
  auto existing = store->GetRepository(request.virtual_storage, request.relative_path);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    out << "repository is already tracked in praefect database";
    return (*existing)->repository_id;
  }
  auto id = store->ReserveRepositoryId();
  if (!id.ok()) return Status(id.status().code(), "ReserveRepositoryID: " + id.status().message());
  datastore::NewRepository repo;
  repo.repository_id = *id;
  repo.virtual_storage = request.virtual_storage;
  repo.relative_path = request.relative_path;
  repo.replica_path = request.replica_path;
  repo.primary = request.authoritative_storage;
  if (replication_factor) {
    repo.assigned = secondaries;
    repo.assigned.push_back(request.authoritative_storage);
  }
  Status created = store->CreateRepository(repo);
  if (created.code() == StatusCode::kAlreadyExists) {
    out << "repository is already tracked in praefect database";
    auto raced = store->GetRepository(request.virtual_storage, request.relative_path);
    if (!raced.ok()) return raced.status();
    if (raced->has_value()) return (*raced)->repository_id;
  }
  if (!created.ok()) return Status(created.code(), "CreateRepository: " + created.message());
  return *id;
}

}  // namespace

StatusOr<bool> AuthoritativeRepositoryExists(const config::Config& config, const TrackRequest& request,
                                             std::ostream& out) {
  const config::VirtualStorage* vs = FindVirtualStorage(config, request.virtual_storage);
  if (vs == nullptr) return NotFound("virtual storage " + GoQuote(request.virtual_storage) + " not found");
  for (const auto& node : vs->nodes) {
    if (node.storage != request.authoritative_storage) continue;
    auto channel = nodes::Dial(node.address, grpc::ChannelArguments());
    grpc::Status st = grpc::Status(grpc::StatusCode::UNAVAILABLE, "cannot dial");
    gitaly::RepositoryExistsResponse response;
    if (channel.ok() && (*channel)->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      ctx.AddMetadata("client_name", "track-repository");
      if (!node.token.empty())
        ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                        auth::BearerV2(node.token, std::chrono::system_clock::now()));
      gitaly::RepositoryExistsRequest req;
      req.mutable_repository()->set_storage_name(node.storage);
      req.mutable_repository()->set_relative_path(request.replica_path);
      st = gitaly::RepositoryService::NewStub(*channel)->RepositoryExists(&ctx, req, &response);
    }
    if (!st.ok()) {
      out << "checking if repository exists " << GoQuote(node.storage) << ", " << GoQuote(request.replica_path);
      return false;
    }
    return response.exists();
  }
  return NotFound("node " + GoQuote(request.authoritative_storage) + " not found");
}

Status TrackRepository(const config::Config& config, datastore::PostgresDatastore* store,
                       const TrackRequest& request, bool replicate_immediately, std::ostream& out) {
  const config::VirtualStorage* vs = FindVirtualStorage(config, request.virtual_storage);
  std::vector<std::string> secondaries;
  if (vs != nullptr) secondaries = PickSecondaries(*vs, request.authoritative_storage);
  auto exists = AuthoritativeRepositoryExists(config, request, out);
  if (!exists.ok()) return Prefixed(exists.status());
  if (!*exists) return Prefixed(NotFound("authoritative repository does not exist"));

  auto id = Record(store, request, secondaries, vs->default_replication_factor > 0, out);
  if (!id.ok()) return Prefixed(id.status());
  out << "Finished adding new repository to be tracked in praefect database.\n" << std::flush;

  const std::string correlation_id = NewCorrelationId("track-repository");
  std::unique_ptr<nodes::NodeSet> node_set;
  std::unique_ptr<replication::Replicator> replicator;
  if (replicate_immediately && !secondaries.empty()) {
    auto created = nodes::NodeSet::Create(config, grpc::ChannelArguments());
    if (!created.ok()) return Prefixed(created.status());
    node_set = std::move(*created);
    replicator = std::make_unique<replication::Replicator>(store, node_set.get(), nullptr, replication::Options{});
  }
  for (const std::string& secondary : secondaries) {
    if (replicator) {
      datastore::ReplicationJob job;
      job.change = datastore::ChangeType::kUpdate;
      job.repository_id = *id;
      job.virtual_storage = request.virtual_storage;
      job.relative_path = request.relative_path;
      job.replica_path = request.replica_path;
      job.source_node_storage = request.authoritative_storage;
      job.target_node_storage = secondary;
      if (Status st = replicator->RunJob(job); !st.ok())
        return Status(st.code(), std::string(kTrackErrorPrefix) + ": processing replication event " + st.message());
      out << "Finished replicating repository to " << GoQuote(secondary) << ".\n" << std::flush;
      continue;
    }
    auto queued = store->EnqueueUpdate(*id, request.authoritative_storage, secondary, correlation_id);
    if (!queued.ok()) return Prefixed(queued.status());
    if (!*queued) {
      out << "replication event queue already has similar entry: replication event \"\" -> "
          << GoQuote(request.virtual_storage) << " -> " << GoQuote(secondary) << " -> "
          << GoQuote(request.relative_path) << " already exists.\n";
      return Status::Ok();
    }
    out << "Added replication job to replicate repository to " << GoQuote(secondary) << ".\n" << std::flush;
  }
  return Status::Ok();
}

}  // namespace praefect::cli
