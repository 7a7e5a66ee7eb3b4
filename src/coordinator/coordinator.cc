#include "coordinator/coordinator.h"

#include <grpcpp/generic/generic_stub.h>

#include <random>

#include "auth/token.h"
#include "common/quote.h"
#include "coordinator/record.h"
#include "coordinator/request_paths.h"
#include "coordinator/transaction_call.h"
#include "log/log.h"
#include "wire/rewriter.h"

namespace praefect::coordinator {
namespace {

using protoregistry::MethodInfo;
using protoregistry::Operation;
using protoregistry::Scope;

std::string NewCorrelationId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  char id[9 + 32] = {'p', 'r', 'a', 'e', 'f', 'e', 'c', 't', '-'};
  char* at = id + 9;
  for (int i = 0; i < 2; ++i) {
    uint64_t v = rng();
    for (int j = 0; j < 16; ++j, v >>= 4) *at++ = kHex[v & 15];
  }
  return std::string(id, sizeof id);  // one allocation
}

std::string Quoted(std::string_view s) { return QuoteForMessage(s); }

Status UnknownVirtualStorage(std::string_view name, std::string_view method) {
  return InvalidArgument("virtual storage " + Quoted(name) + " does not exist (" + std::string(method) +
                         "): use one of the virtual storages in praefect's config.toml");
}

// Calls `method` with `request` on `node`, once, without waiting: the
// fan-out of storage-scoped mutators to the nodes that are not the primary.
void FireAndLog(const nodes::Node& node, const std::string& method, std::string request,
                std::chrono::system_clock::time_point now) {
  struct Call {
    grpc::ClientContext ctx;
    grpc::ByteBuffer request;
    grpc::ByteBuffer response;
  };
  auto call = std::make_shared<Call>();
  call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (std::string token = node.Token(); !token.empty())
    call->ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey), auth::BearerV2(token, now));
  grpc::Slice slice(request);
  call->request = grpc::ByteBuffer(&slice, 1);
  grpc::GenericStub stub(node.channel);
  std::string label = node.Label();
  stub.UnaryCall(&call->ctx, method, grpc::StubOptions(), &call->request, &call->response,
                 [call, label, method](grpc::Status st) {
                   if (!st.ok())
                     log::Warn("storage-scoped mutator failed on a secondary node",
                               {{"grpc.method", method}, {"node", label}, {"error", st.error_message()}});
                 });
}

}  // namespace

StatusOr<const nodes::Node*> PrimaryRouter::RouteRepository(const nodes::VirtualStorage& vs, std::string_view,
                                                            Operation) {
  return &vs.Primary();
}

StatusOr<const nodes::Node*> PrimaryRouter::RouteStorageAccessor(const nodes::VirtualStorage& vs) {
  if (vs.Primary().healthy.load()) return &vs.Primary();
  for (const auto& node : vs.nodes) {
    if (node->healthy.load()) return node.get();
  }
  return Unavailable("virtual storage " + Quoted(vs.name) +
                     ": no healthy node (check the nodes with `praefect -config FILE dial-nodes`)");
}

Coordinator::Coordinator(const protoregistry::Registry* registry, const nodes::NodeSet* nodes, Router* router,
                         metrics::Metrics* metrics, Options options, datastore::Datastore* store)
    : registry_(registry),
      nodes_(nodes),
      router_(router),
      metrics_(metrics),
      options_(std::move(options)),
      auth_(std::make_shared<const AuthSettings>(options_.auth_token, options_.auth_transitioning)),
      store_(store) {
  repository_router_ = options_.repository_router;
  if (repository_router_ == nullptr && store_ != nullptr) {
    owned_router_ = std::make_unique<routing::RepositoryRouter>(store_, nullptr, routing::Options{});
    repository_router_ = owned_router_.get();
  }
  if (options_.transactions != nullptr) primary_watch_ = std::make_unique<PrimaryWatch>();
}

std::chrono::system_clock::time_point Coordinator::Now() const {
  return options_.now ? options_.now() : std::chrono::system_clock::now();
}

void Coordinator::SetAuth(std::string token, bool transitioning) {
  auth_.store(std::make_shared<const AuthSettings>(std::move(token), transitioning));
}

Status Coordinator::Authenticate(const http2::HeaderList& metadata) {
  const std::shared_ptr<const AuthSettings> auth = auth_.load();
  if (auth->key.empty()) return Status::Ok();
  const std::string* found = http2::FindHeader(metadata, auth::kAuthorizationMetadataKey);
  std::string_view value = found == nullptr ? std::string_view() : std::string_view(*found);
  Status st = auth->key.VerifyV2(value, Now());
  const bool enforced = !auth->transitioning;
  const char* outcome = st.ok() ? "ok" : st.code() == StatusCode::kUnauthenticated ? "unauthenticated" : "denied";
  if (metrics_ != nullptr) {
    metrics_->Authentications(enforced, outcome).Increment();
    if (!st.ok()) {
      if (std::string_view error = auth::V2ErrorLabel(value, st, Now()); !error.empty())
        metrics_->AuthenticationErrors("v2", error).Increment();
    }
  }
  if (!st.ok() && !enforced) return Status::Ok();
  return st;
}

Status Coordinator::Admit(const http2::CallInfo& call) {
  if (Status st = Authenticate(*call.metadata); !st.ok()) return st;
  const MethodInfo* info = registry_->Lookup(call.method);
  if (info == nullptr) return protoregistry::Registry::UnknownMethodError(call.method);
  if (info->scope == Scope::kServer)
    return Unimplemented("server-scoped method " + std::string(call.method) +
                         " is not served through praefect: call a Gitaly node directly");
  return Status::Ok();
}

namespace {

// Set while Direct routes on the data plane's loop: a datastore read that
// could block fails with WouldBlock() instead, and the call is routed again
// on the executor.
thread_local bool routing_on_loop = false;

Status WouldBlock() { return Status(StatusCode::kUnavailable, "praefect: routing would block"); }

bool IsWouldBlock(const StatusOr<http2::Route>& r) {
  return !r.ok() && r.status().code() == StatusCode::kUnavailable && r.status().message() == WouldBlock().message();
}

}  // namespace

void Coordinator::Direct(const http2::CallInfo& call, Done done) {
  if (!options_.executor || store_ == nullptr || !store_->MayBlock()) {
    done(Route(call));
    return;
  }
  // Reads the cache can answer are routed here, on the loop, without the
  // two thread switches of the executor.
  if (options_.cache != nullptr) {
    const MethodInfo* info = registry_->Lookup(call.method);
    if (info != nullptr && info->operation == Operation::kAccessor && info->scope == Scope::kRepository) {
      routing_on_loop = true;
      StatusOr<http2::Route> route = RouteUncounted(call);
      routing_on_loop = false;
      if (!IsWouldBlock(route)) {
        CountMethodType(*info);
        done(std::move(route));
        return;
      }
    }
  }
  // The views in `call` stay valid until `done` runs (proxy/director.h).
  options_.executor([this, call, done = std::move(done)] { done(Route(call)); });
}

void Coordinator::CountMethodType(const MethodInfo& info) {
  if (metrics_ != nullptr) metrics_->MethodTypeCounter(protoregistry::OperationName(info.operation)).Increment();
}

StatusOr<http2::Route> Coordinator::Decide(const http2::CallInfo& call) {
  if (Status st = Admit(call); !st.ok()) return st;
  return Route(call);
}

StatusOr<http2::Route> Coordinator::Route(const http2::CallInfo& call) {
  if (const MethodInfo* info = registry_->Lookup(call.method); info != nullptr) CountMethodType(*info);
  return RouteUncounted(call);
}

StatusOr<http2::Route> Coordinator::RouteUncounted(const http2::CallInfo& call) {
  const MethodInfo* info = registry_->Lookup(call.method);
  if (info == nullptr) return protoregistry::Registry::UnknownMethodError(call.method);  // Admit refused it.
  if (!call.first_message)
    return InvalidArgument(std::string(call.method) + ": the client sent no request message");
  if (Status st = ValidateOtherPaths(*info, *call.first_message); !st.ok()) return st;
  switch (info->scope) {
    case Scope::kRepository:
      return RouteRepositoryCall(*info, *call.first_message, call);
    case Scope::kStorage:
      return RouteStorageCall(*info, *call.first_message, call);
    case Scope::kServer:
      break;
  }
  return Unimplemented("server-scoped method " + std::string(call.method) +
                       " is not served through praefect: call a Gitaly node directly");
}

http2::Route Coordinator::RouteTo(const nodes::Node& node, const http2::CallInfo& call) {
  http2::Route route;
  route.upstream = node.upstream;
  route.label = node.Label();
  // Sized once: growing them entry by entry costs an allocation and the
  // moves of the entries each time, on every proxied call.
  route.log_fields.reserve(3);
  route.set_metadata.reserve(2);
  // A node that could not be reached is checked again at once, so routing
  // stops sending it calls within a round trip instead of a tick.
  const nodes::NodeSet* node_set = nodes_;
  route.finalizer = [node_set](const Status& st) {
    if (st.code() == StatusCode::kUnavailable) node_set->RequestCheck();
  };
  if (std::shared_ptr<const auth::SigningKey> key = node.Key(); key->empty()) {
    route.drop_metadata.push_back(std::string(auth::kAuthorizationMetadataKey));
  } else {
    route.set_metadata.emplace_back(std::string(auth::kAuthorizationMetadataKey), key->BearerV2(Now()));
  }
  route.log_fields.emplace_back("virtual_storage", node.virtual_storage);
  route.log_fields.emplace_back("storage", node.storage);
  if (!call.Get(kCorrelationIdKey)) {
    std::string id = NewCorrelationId();
    route.log_fields.emplace_back("correlation_id", id);
    route.set_metadata.emplace_back(std::string(kCorrelationIdKey), std::move(id));
  }
  return route;
}

StatusOr<http2::Route> Coordinator::RouteRepositoryCall(const MethodInfo& info, std::string_view message,
                                                        const http2::CallInfo& call) {
  auto target = wire::ReadRepository(message, info.target_repository);
  if (!target.ok()) return target.status();
  if (Status st = ValidateTarget(call.method, *target); !st.ok()) return st;
  const nodes::VirtualStorage* vs = nodes_->Find(target->storage_name);
  if (vs == nullptr) return UnknownVirtualStorage(target->storage_name, call.method);
  if (store_ != nullptr) return RouteRegisteredCall(info, message, call, *vs, target->relative_path);
  auto node = router_->RouteRepository(*vs, target->relative_path, info.operation);
  if (!node.ok()) return node.status();

  auto rewritten = wire::RewriteRepository(message, info.target_repository,
                                           wire::RepositoryRewrite{(*node)->storage, std::nullopt});
  if (!rewritten.ok()) return rewritten.status();
  if (!info.additional_repository.empty()) {
    auto additional = wire::ReadRepository(*rewritten, info.additional_repository);
    if (!additional.ok()) return additional.status();
    if (additional->present && !additional->storage_name.empty()) {
      if (additional->storage_name != vs->name)
        return InvalidArgument(std::string(call.method) + ": the additional repository is on virtual storage " +
                               Quoted(additional->storage_name) + ", not on " + Quoted(vs->name) +
                               " with the target repository");
      auto both = wire::RewriteRepository(*rewritten, info.additional_repository,
                                          wire::RepositoryRewrite{(*node)->storage, std::nullopt});
      if (!both.ok()) return both.status();
      rewritten = std::move(both);
    }
  }
  http2::Route route = RouteTo(**node, call);
  route.log_fields.emplace_back("relative_path", target->relative_path);
  route.first_message = std::move(*rewritten);
  return route;
}

namespace {

// Methods that create the repository they target.
bool CreatesRepository(std::string_view method) {
  static const std::string_view kCreating[] = {
      "/gitaly.RepositoryService/CreateRepository",
      "/gitaly.RepositoryService/CreateRepositoryFromURL",
      "/gitaly.RepositoryService/CreateRepositoryFromBundle",
      "/gitaly.RepositoryService/CreateRepositoryFromSnapshot",
      "/gitaly.RepositoryService/CreateFork",
  };
  for (auto m : kCreating) {
    if (m == method) return true;
  }
  return false;
}

constexpr std::string_view kRemoveRepository = "/gitaly.RepositoryService/RemoveRepository";

// Reads Praefect sends to the primary: sizes (replicas may differ in packing)
// and calls whose client asks for it.
bool ReadsFromPrimary(std::string_view method, const http2::CallInfo& call) {
  if (method == "/gitaly.RepositoryService/RepositorySize" ||
      method == "/gitaly.RepositoryService/GetObjectDirectorySize")
    return true;
  static constexpr std::string_view kPolicy = "gitaly-route-repository-accessor-policy";
  return call.Get(kPolicy) == "primary-only";
}

std::string CorrelationId(const http2::CallInfo& call, const http2::Route& route) {
  if (auto id = call.Get(kCorrelationIdKey)) return std::string(*id);
  for (const auto& [key, value] : route.set_metadata) {
    if (key == kCorrelationIdKey) return value;
  }
  return "";
}


}  // namespace

StatusOr<http2::Route> Coordinator::RouteRegisteredCall(const MethodInfo& info, std::string_view message,
                                                        const http2::CallInfo& call, const nodes::VirtualStorage& vs,
                                                        std::string_view relative_path) {
  const std::string method(call.method);
  // Reads of a registered repository need its replicas' generations only,
  // which the cache keeps fresh; everything else reads the datastore.
  const bool routed_as_read = info.operation == Operation::kAccessor && !ReadsFromPrimary(method, call);
  datastore::Datastore* store = store_;
  auto load = [store, &vs, relative_path] { return store->GetRepository(vs.name, relative_path); };
  StatusOr<std::optional<datastore::RepositoryMetadata>> existing{std::optional<datastore::RepositoryMetadata>()};
  if (routing_on_loop) {
    std::optional<datastore::RepositoryMetadata> cached;
    if (routed_as_read && options_.cache != nullptr) cached = options_.cache->Peek(vs.name, relative_path);
    if (!cached) return WouldBlock();
    existing = std::optional<datastore::RepositoryMetadata>(std::move(*cached));
  } else {
    existing = routed_as_read && options_.cache != nullptr ? options_.cache->Get(vs.name, relative_path, load)
                                                           : load();
  }
  if (!existing.ok()) return existing.status();
  const bool creating = CreatesRepository(method);
  int64_t repository_id = 0;
  std::string replica_path;
  // Where the call goes: a new repository to the node chosen for it; reads
  // of a registered repository spread over its healthy, up-to-date replicas
  // (the primary among them); size queries, clients asking for the primary,
  // writes and maintenance to the repository's primary.
  const nodes::Node* target = nullptr;
  routing::Creation creation;
  if (creating) {
    if (existing->has_value())
      return Status(StatusCode::kAlreadyExists, "repository " + Quoted(relative_path) +
                                                    " already exists in virtual storage " + Quoted(vs.name));
    auto placed = repository_router_->RouteCreate(vs);
    if (!placed.ok()) return placed.status();
    creation = std::move(*placed);
    target = creation.primary;
    auto id = store_->ReserveRepositoryId();
    if (!id.ok()) return id.status();
    repository_id = *id;
    replica_path = datastore::DeriveReplicaPath(repository_id);
  } else {
    if (!existing->has_value())
      return NotFound("repository " + Quoted(relative_path) + " not found in virtual storage " + Quoted(vs.name) +
                      " (" + method + ")");
    repository_id = (*existing)->repository_id;
    replica_path = (*existing)->replica_path;
    auto routed = routed_as_read ? repository_router_->RouteRead(vs, **existing)
                      : repository_router_->RouteWrite(vs, **existing);
    if (!routed.ok()) return routed.status();
    target = *routed;
    if (info.operation == Operation::kAccessor && metrics_ != nullptr)
      metrics_->ReadDistribution(vs.name, target->storage).Increment();
  }

  // The first message for the node of `storage`: the target repository and
  // the additional one (when on this virtual storage) rewritten to their
  // replicas there.
  std::optional<std::string> additional_replica;
  auto rewrite_for = [&](const std::string& storage) -> StatusOr<std::string> {
    auto rewritten = wire::RewriteRepository(message, info.target_repository,
                                             wire::RepositoryRewrite{storage, replica_path});
    if (!rewritten.ok() || info.additional_repository.empty()) return rewritten;
    auto additional = wire::ReadRepository(*rewritten, info.additional_repository);
    if (!additional.ok()) return additional.status();
    if (!additional->present || additional->storage_name.empty()) return rewritten;
    if (additional->storage_name != vs.name)
      return InvalidArgument(method + ": the additional repository is on virtual storage " +
                             Quoted(additional->storage_name) + ", not on " + Quoted(vs.name) +
                             " with the target repository");
    if (!additional_replica) {
      auto other = store_->GetRepository(vs.name, additional->relative_path);
      if (!other.ok()) return other.status();
      if (!other->has_value())
        return NotFound("additional repository " + Quoted(additional->relative_path) +
                        " not found in virtual storage " + Quoted(vs.name));
      additional_replica = (*other)->replica_path;
    }
    return wire::RewriteRepository(*rewritten, info.additional_repository,
                                   wire::RepositoryRewrite{storage, *additional_replica});
  };
  auto rewritten = rewrite_for(target->storage);
  if (!rewritten.ok()) return rewritten.status();

  http2::Route route = RouteTo(*target, call);
  route.log_fields.emplace_back("relative_path", std::string(relative_path));
  route.first_message = std::move(*rewritten);
  if (info.operation != Operation::kMutator) return route;

  const nodes::Node& primary = *target;
  std::vector<std::string> others =
      creating ? creation.outdated : repository_router_->ReplicationTargets(vs, **existing, primary);
  std::shared_ptr<TransactionCall> tx;
  if (options_.transactions != nullptr && primary.backchannel && IsTransactional(method)) {
    auto made = StartTransaction(vs, primary, creating ? nullptr : &**existing, others, rewrite_for, call, &route);
    if (!made.ok()) return made.status();
    tx = std::move(*made);
  }
  // After its own record, this praefect drops its cached entry before the
  // client hears back, so the client's next read sees its write; other
  // praefects hear of it through the datastore's notifications.
  datastore::RepositoryCache* cache = options_.cache;
  auto invalidate = [cache, vs_name = vs.name, rel = std::string(relative_path)] {
    if (cache != nullptr) cache->Invalidate(vs_name, rel);
  };
  auto executor = options_.executor;
  const std::string correlation_id = CorrelationId(call, route);
  std::function<void(const Status&, http2::Route::CommitDone)> commit;
  if (creating) {
    datastore::NewRepository repo{repository_id, vs.name,      std::string(relative_path), replica_path,
                                  primary.storage, others, correlation_id, creation.assigned};
    const nodes::Node* node = &primary;  // Lives as long as the NodeSet, as the voters.
    std::vector<const nodes::Node*> voters;
    if (tx) {
      for (const std::string& storage : tx->secondaries()) voters.push_back(vs.FindNode(storage));
    }
    commit = [store, repo, node, voters, invalidate, tx](const Status& st, http2::Route::CommitDone done) mutable {
      if (tx) {
        Replicas replicas = tx->Finish(st, repo.correlation_id);
        if (!replicas.record) return done(std::nullopt);
        repo.updated = std::move(replicas.updated);
        repo.outdated.clear();
        for (auto& [storage, reason] : replicas.outdated) repo.outdated.push_back(storage);
      }
      CommitCreation(store, repo, *node, voters, invalidate, st, std::move(done));
    };
  } else if (method == kRemoveRepository) {
    std::string vs_name = vs.name, rel(relative_path), primary_storage = primary.storage;
    commit = [store, vs_name, rel, primary_storage, correlation_id, invalidate](const Status& st,
                                                                                http2::Route::CommitDone done) {
      if (!st.ok() && st.code() != StatusCode::kNotFound) return done(std::nullopt);
      auto removed = store->DeleteRepository(vs_name, rel, primary_storage, correlation_id);
      invalidate();
      if (!removed.ok()) return done(NotRecorded(removed.status()));
      // Registered: the removal succeeded even if the primary had no copy.
      if (removed->has_value()) return done(Status::Ok());
      done(std::nullopt);
    };
  } else {
    datastore::Write write{repository_id, primary.storage, {}, others, correlation_id};
    commit = [store, write, invalidate, tx](const Status& st, http2::Route::CommitDone done) mutable {
      if (tx) {
        // What the votes say (§8): a primary that voted changed its
        // replica even if its call then failed.
        Replicas replicas = tx->Finish(st, write.correlation_id);
        if (!replicas.record) return done(std::nullopt);
        write.updated = std::move(replicas.updated);
        write.outdated.clear();
        for (auto& [storage, reason] : replicas.outdated) write.outdated.push_back(storage);
        if (!st.ok()) {
          Status recorded = store->RecordWrite(write);
          invalidate();
          if (!recorded.ok())
            log::Warn("a failed transactional write could not be recorded",
                      {{"correlation_id", write.correlation_id}, {"error", recorded.message()}});
          return done(std::nullopt);
        }
      } else if (!st.ok()) {
        return done(std::nullopt);
      }
      Status recorded = store->RecordWrite(write);
      invalidate();
      if (recorded.code() == StatusCode::kFailedPrecondition)
        return done(Status(StatusCode::kUnavailable,
                                 "the write reached a replica that is not up to date (" + recorded.message() +
                                 "); it is not acknowledged: retry, the next write goes to an up-to-date primary"));
      if (!recorded.ok() && recorded.code() != StatusCode::kNotFound) return done(NotRecorded(recorded));
      done(std::nullopt);
    };
  }
  if (executor) {
    route.commit = [executor, commit](const Status& st, http2::Route::CommitDone done) {
      executor([commit, st, done = std::move(done)] { commit(st, done); });
    };
  } else {
    route.commit = std::move(commit);
  }
  if (tx) CommitEvenIfAbandoned(&route);
  return route;
}

StatusOr<http2::Route> Coordinator::RouteStorageCall(const MethodInfo& info, std::string_view message,
                                                     const http2::CallInfo& call) {
  auto name = wire::ReadStringField(message, info.storage);
  if (!name.ok()) return name.status();
  if (!*name || (*name)->empty())
    return InvalidArgument(std::string(call.method) + ": storage scoped: the request names no storage");
  const nodes::VirtualStorage* vs = nodes_->Find(**name);
  if (vs == nullptr) return UnknownVirtualStorage(**name, call.method);

  if (info.operation == Operation::kAccessor) {
    auto node = router_->RouteStorageAccessor(*vs);
    if (!node.ok()) return node.status();
    auto rewritten = wire::RewriteStringField(message, info.storage, (*node)->storage);
    if (!rewritten.ok()) return rewritten.status();
    http2::Route route = RouteTo(**node, call);
    route.first_message = std::move(*rewritten);
    return route;
  }
  // Mutators and maintenance reach every node: one through the proxy (its
  // answer is the client's; the configured primary while it is healthy),
  // the others once it succeeded.
  auto first = router_->RouteStorageAccessor(*vs);
  if (!first.ok()) return first.status();
  const nodes::Node& primary = **first;
  auto rewritten = wire::RewriteStringField(message, info.storage, primary.storage);
  if (!rewritten.ok()) return rewritten.status();
  std::vector<std::pair<const nodes::Node*, std::string>> others;
  if (info.shape == protoregistry::Shape::kUnary) {
    for (const auto& node : vs->nodes) {
      if (node.get() == &primary) continue;
      auto bytes = wire::RewriteStringField(message, info.storage, node->storage);
      if (!bytes.ok()) return bytes.status();
      others.emplace_back(node.get(), std::move(*bytes));
    }
  }
  http2::Route route = RouteTo(primary, call);
  route.first_message = std::move(*rewritten);
  if (!others.empty()) {
    std::string method(call.method);
    auto now = Now();
    route.finalizer = [others = std::move(others), method, now, recheck = std::move(route.finalizer)](
                          const Status& st) mutable {
      if (recheck) recheck(st);
      if (!st.ok()) return;
      for (auto& [node, bytes] : others) FireAndLog(*node, method, std::move(bytes), now);
    };
  }
  return route;
}

}  // namespace praefect::coordinator
