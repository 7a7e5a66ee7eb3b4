#include "services/praefect_info.h"

#include <array>

#include "common/quote.h"
#include "praefect/praefect.pb.h"
#include "services/repository_replicas.h"

namespace praefect::services {
namespace {

constexpr std::string_view kPrefix = "/gitaly.PraefectInfoService/";
constexpr std::array<std::string_view, 6> kMethods = {"RepositoryReplicas",    "Dataloss",
                                                      "SetAuthoritativeStorage", "MarkUnverified",
                                                      "SetReplicationFactor",  "GetRepositoryMetadata"};
constexpr size_t kDatalossChunkBytes = 1024 * 1024;  // as Praefect's

std::string Quote(std::string_view text) { return QuoteForMessage(text, 4096); }

template <typename Message>
StatusOr<Message> Parse(std::string_view request) {
  Message m;
  if (!m.ParseFromArray(request.data(), static_cast<int>(request.size())))
    return InvalidArgument("the request is not a valid " + m.GetTypeName() + " message");
  return m;
}

std::vector<std::string> One(const google::protobuf::MessageLite& m) { return {m.SerializeAsString()}; }

Status NeedsDatabase(std::string_view method) {
  return FailedPrecondition(std::string(method) +
                            " needs praefect's PostgreSQL database, and this praefect runs without one (no "
                            "[database] in its configuration): configure [database] and run praefect sql-migrate");
}

StatusOr<std::vector<std::string>> Dataloss(const PraefectInfoDeps& deps, std::string_view request) {
  std::vector<std::string> out;
  Status st = StreamDataloss(deps, request, [&](std::string m) {
    out.push_back(std::move(m));
    return true;
  });
  if (!st.ok()) return st;
  return out;
}

StatusOr<std::vector<std::string>> SetAuthoritativeStorage(const PraefectInfoDeps& deps, std::string_view request) {
  auto req = Parse<gitaly::SetAuthoritativeStorageRequest>(request);
  if (!req.ok()) return req.status();
  const nodes::VirtualStorage* vs = deps.nodes->Find(req->virtual_storage());
  if (vs == nullptr) return InvalidArgument("unknown virtual storage: " + Quote(req->virtual_storage()));
  if (vs->FindNode(req->authoritative_storage()) == nullptr)
    return InvalidArgument("unknown authoritative storage: " + Quote(req->authoritative_storage()));
  if (deps.operator_store == nullptr) return NeedsDatabase("SetAuthoritativeStorage");
  Status st = deps.operator_store->SetAuthoritativeStorage(req->virtual_storage(), req->relative_path(),
                                                           req->authoritative_storage());
  if (st.code() == StatusCode::kNotFound) return InvalidArgument("repository does not exist on virtual storage");
  if (!st.ok()) return st;
  return One(gitaly::SetAuthoritativeStorageResponse());
}

StatusOr<std::vector<std::string>> MarkUnverified(const PraefectInfoDeps& deps, std::string_view request) {
  auto req = Parse<gitaly::MarkUnverifiedRequest>(request);
  if (!req.ok()) return req.status();
  datastore::UnverifiedSelector selector;
  switch (req->selector_case()) {
    case gitaly::MarkUnverifiedRequest::kRepositoryId: selector.repository_id = req->repository_id(); break;
    case gitaly::MarkUnverifiedRequest::kVirtualStorage: selector.virtual_storage = req->virtual_storage(); break;
    case gitaly::MarkUnverifiedRequest::kStorage:
      selector.virtual_storage = req->storage().virtual_storage();
      selector.storage = req->storage().storage();
      // An empty storage would select the whole virtual storage.
      if (selector.storage.empty()) return InvalidArgument("storage.storage is empty: name the storage to mark");
      break;
    default:
      return InvalidArgument("unknown selector: set repository_id, virtual_storage or storage");
  }
  if (deps.operator_store == nullptr) return NeedsDatabase("MarkUnverified");
  auto marked = deps.operator_store->MarkUnverified(selector);
  if (!marked.ok()) return marked.status();
  gitaly::MarkUnverifiedResponse resp;
  resp.set_replicas_marked(*marked);
  return One(resp);
}

StatusOr<std::vector<std::string>> SetReplicationFactor(const PraefectInfoDeps& deps, std::string_view request) {
  auto req = Parse<gitaly::SetReplicationFactorRequest>(request);
  if (!req.ok()) return req.status();
  const nodes::VirtualStorage* vs = deps.nodes->Find(req->virtual_storage());
  if (vs == nullptr) return InvalidArgument("unknown virtual storage: " + Quote(req->virtual_storage()));
  std::vector<std::string> configured;
  for (const auto& node : vs->nodes) configured.push_back(node->storage);
  auto assigned = deps.store->SetReplicationFactor(req->virtual_storage(), req->relative_path(),
                                                   req->replication_factor(), configured);
  if (!assigned.ok()) {
    // Praefect answers both as INVALID_ARGUMENT: the caller named them.
    if (assigned.status().code() == StatusCode::kNotFound)
      return InvalidArgument(assigned.status().message());
    return assigned.status();
  }
  gitaly::SetReplicationFactorResponse resp;
  for (const std::string& s : *assigned) resp.add_storages(s);
  return One(resp);
}

StatusOr<std::vector<std::string>> GetRepositoryMetadata(const PraefectInfoDeps& deps, std::string_view request) {
  auto req = Parse<gitaly::GetRepositoryMetadataRequest>(request);
  if (!req.ok()) return req.status();
  datastore::RepositoryKey key;
  switch (req->query_case()) {
    case gitaly::GetRepositoryMetadataRequest::kRepositoryId: key.repository_id = req->repository_id(); break;
    case gitaly::GetRepositoryMetadataRequest::kPath:
      key.virtual_storage = req->path().virtual_storage();
      key.relative_path = req->path().relative_path();
      break;
    default:
      return InvalidArgument("unknown query: set repository_id or path");
  }
  if (deps.operator_store == nullptr) return NeedsDatabase("GetRepositoryMetadata");
  auto found = deps.operator_store->GetRepositoryStatus(key, ConfiguredStoragesOf(*deps.nodes), deps.health_window);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return NotFound("repository not found");
  const datastore::RepositoryStatus& repo = **found;
  gitaly::GetRepositoryMetadataResponse resp;
  resp.set_repository_id(repo.repository_id);
  resp.set_virtual_storage(repo.virtual_storage);
  resp.set_relative_path(repo.relative_path);
  resp.set_replica_path(repo.replica_path);
  resp.set_primary(repo.primary);
  resp.set_generation(repo.generation);
  for (const datastore::ReplicaStatus& r : repo.replicas) {
    auto* replica = resp.add_replicas();
    replica->set_storage(r.storage);
    replica->set_assigned(r.assigned);
    replica->set_generation(r.generation);
    replica->set_healthy(r.healthy);
    replica->set_valid_primary(r.valid_primary);
    if (r.verified_at_us) {
      // Floor division: a time before 1970 keeps nanos in [0, 1e9).
      int64_t seconds = *r.verified_at_us / 1000000;
      int64_t micros = *r.verified_at_us % 1000000;
      if (micros < 0) {
        micros += 1000000;
        seconds -= 1;
      }
      replica->mutable_verified_at()->set_seconds(seconds);
      replica->mutable_verified_at()->set_nanos(static_cast<int32_t>(micros * 1000));
    }
  }
  return One(resp);
}

}  // namespace

bool IsPraefectInfoMethod(std::string_view method) {
  if (!method.starts_with(kPrefix)) return false;
  method.remove_prefix(kPrefix.size());
  for (std::string_view m : kMethods)
    if (m == method) return true;
  return false;
}

datastore::ConfiguredStorages ConfiguredStoragesOf(const nodes::NodeSet& nodes) {
  datastore::ConfiguredStorages out;
  for (const auto& vs : nodes.virtual_storages())
    for (const auto& node : vs.nodes) out.emplace_back(vs.name, node->storage);
  return out;
}

bool DatalossChunker::Add(const datastore::RepositoryStatus& repo) {
  auto* r = chunk_.add_repositories();
  r->set_relative_path(repo.relative_path);
  r->set_unavailable(repo.Unavailable());
  r->set_primary(repo.primary);
  for (const datastore::ReplicaStatus& replica : repo.replicas) {
    auto* s = r->add_storages();
    s->set_name(replica.storage);
    s->set_behind_by(repo.generation - replica.generation);
    s->set_assigned(replica.assigned);
    s->set_healthy(replica.healthy);
    s->set_valid_primary(replica.valid_primary);
  }
  // The repository's size and a tag and length of at most 1 + 5 bytes
  // (ByteSizeLong of the whole chunk each time would be quadratic).
  bytes_ += r->ByteSizeLong() + 6;
  if (bytes_ < chunk_bytes_) return true;
  emitted_ = true;
  bytes_ = 0;
  std::string message = chunk_.SerializeAsString();
  chunk_.Clear();
  return emit_(std::move(message));
}

bool DatalossChunker::Finish() {
  if (chunk_.repositories_size() == 0 && emitted_) return true;
  emitted_ = true;
  std::string message = chunk_.SerializeAsString();
  chunk_.Clear();
  bytes_ = 0;
  return emit_(std::move(message));
}

Status StreamDataloss(const PraefectInfoDeps& deps, std::string_view request,
                      const std::function<bool(std::string)>& emit) {
  auto req = Parse<gitaly::DatalossRequest>(request);
  if (!req.ok()) return req.status();
  // Praefect's handler error has no code: INTERNAL.
  if (deps.nodes->Find(req->virtual_storage()) == nullptr)
    return Internal("unknown virtual storage: " + Quote(req->virtual_storage()));
  if (deps.operator_store == nullptr) return NeedsDatabase("Dataloss");
  DatalossChunker chunker(kDatalossChunkBytes, emit);
  const Status gone = Cancelled("the client went away while dataloss was being read");
  Status st = deps.operator_store->ForEachDataloss(
      req->virtual_storage(), req->include_partially_replicated(), ConfiguredStoragesOf(*deps.nodes),
      deps.health_window, [&](std::vector<datastore::RepositoryStatus> page) {
        for (const auto& repo : page)
          if (!chunker.Add(repo)) return gone;
        return Status::Ok();
      });
  if (!st.ok()) return st;
  return chunker.Finish() ? Status::Ok() : gone;
}

StatusOr<std::vector<std::string>> AnswerPraefectInfo(const PraefectInfoDeps& deps, std::string_view method,
                                                      std::string_view request) {
  if (!IsPraefectInfoMethod(method))
    return Status(StatusCode::kUnimplemented, "unknown method " + std::string(method));
  std::string_view name = method.substr(kPrefix.size());
  if (name == "Dataloss") return Dataloss(deps, request);
  if (name == "SetAuthoritativeStorage") return SetAuthoritativeStorage(deps, request);
  if (name == "MarkUnverified") return MarkUnverified(deps, request);
  if (name == "SetReplicationFactor") return SetReplicationFactor(deps, request);
  if (name == "GetRepositoryMetadata") return GetRepositoryMetadata(deps, request);
  auto req = Parse<gitaly::RepositoryReplicasRequest>(request);
  if (!req.ok()) return req.status();
  auto resp = AnswerRepositoryReplicas(*deps.nodes, *deps.store, *req, deps.node_timeout);
  if (!resp.ok()) return resp.status();
  return One(*resp);
}

}  // namespace praefect::services
