#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "datastore/datastore.h"
#include "datastore/repository_cache.h"
#include "metrics/metrics.h"
#include "nodes/node_set.h"
#include "protoregistry/registry.h"
#include "http2/director.h"
#include "coordinator/primary_watch.h"
#include "coordinator/transaction_call.h"
#include "routing/repository_router.h"
#include "transactions/manager.h"

// The Director of praefect's proxy: the one place where the Gitaly-agnostic
// forwarder meets Gitaly's semantics. For each call it authenticates the
// client, classifies the method with the registry, finds the virtual storage
// the request names, picks the node, rewrites the storage names in the first
// message and signs the call with the node's token.
namespace praefect::coordinator {

// Picks the node that serves a call; an interface so that later routing
// (per-repository primaries, read distribution) replaces it without touching
// the coordinator. Implementations are thread-safe and must not block.
class Router {
 public:
  virtual ~Router() = default;
  // The node for a repository-scoped call on `relative_path`.
  [[nodiscard]] virtual StatusOr<const nodes::Node*> RouteRepository(const nodes::VirtualStorage& vs,
                                                                     std::string_view relative_path,
                                                                     protoregistry::Operation op) = 0;
  // A healthy node for a storage-scoped accessor.
  [[nodiscard]] virtual StatusOr<const nodes::Node*> RouteStorageAccessor(const nodes::VirtualStorage& vs) = 0;
};

// This routing: every repository-scoped call goes to the virtual
// storage's primary (`primary = true`, or the first node); storage-scoped
// accessors go to a healthy node, the primary first.
class PrimaryRouter final : public Router {
 public:
  StatusOr<const nodes::Node*> RouteRepository(const nodes::VirtualStorage& vs, std::string_view relative_path,
                                               protoregistry::Operation op) override;
  StatusOr<const nodes::Node*> RouteStorageAccessor(const nodes::VirtualStorage& vs) override;
};

struct Options {
  std::string auth_token;  // [auth] token; empty: no authentication
  bool auth_transitioning = false;
  std::function<std::chrono::system_clock::time_point()> now;  // empty: system_clock
  // Runs work that may block (datastore calls) off gRPC's threads; empty:
  // inline (for stores that never block, such as the memory store).
  std::function<void(std::function<void()>)> executor;
  // Routing of registered repositories (with a datastore); null: a
  // per-repository router of the coordinator's own that places new
  // repositories by the local health view.
  routing::RepositoryRouter* repository_router = nullptr;
  // Reads look repositories up here instead of in the datastore (no
  // database round trip); writes always read the datastore, and invalidate
  // the entry after their own record. Null: no cache.
  datastore::RepositoryCache* cache = nullptr;
  // Reference transactions (../shared/reference/transactions.md): with a
  // manager and a datastore, a transactional mutator whose primary has a
  // backchannel goes to the primary and to every healthy, up-to-date
  // secondary with a backchannel at once, and the replicas that committed
  // with the primary are recorded up to date. Null: writes go to the
  // primary alone.
  transactions::Manager* transactions = nullptr;
  // How long, once the primary's call ended, the secondaries still in the
  // transaction may take to end theirs (they only finish what they
  // committed); those that have not are cancelled and replicated.
  std::chrono::milliseconds secondary_grace{5000};
};

// With a datastore, repositories are registered: a creating call reserves
// an id and a replica path (the nodes store the repository there; clients
// keep their relative path), a successful mutator records the write
// (generation bump + update jobs for the other nodes) before the client
// gets its answer, RemoveRepository removes the metadata and schedules the
// other replicas' deletion, and a call on an unregistered repository is
// NOT_FOUND. Without one (null), relative paths pass through unchanged.
//
// Thread-safe. The pointees must outlive the Coordinator; `metrics` and
// `store` may be null.
class Coordinator final : public http2::Director {
 public:
  Coordinator(const protoregistry::Registry* registry, const nodes::NodeSet* nodes, Router* router,
              metrics::Metrics* metrics, Options options, datastore::Datastore* store = nullptr);

  // Before anything is read: the client's token ([auth]) and whether the
  // method is known. Cheap and non-blocking.
  [[nodiscard]] Status Admit(const http2::CallInfo& call) override;

  // Routes an admitted call: inline, or on the executor when the decision
  // reads the datastore.
  void Direct(const http2::CallInfo& call, Done done) override;

  // Admit and route in one (for tests and callers outside the proxy).
  [[nodiscard]] StatusOr<http2::Route> Decide(const http2::CallInfo& call);

  // The client's `authorization` checked against [auth] token, as Gitaly
  // does it (also used by the services praefect answers itself).
  [[nodiscard]] Status Authenticate(const http2::HeaderList& metadata);

  // Replaces [auth] token and transitioning (SIGHUP reload); calls that
  // start afterwards are checked against the new settings.
  void SetAuth(std::string token, bool transitioning);

 private:
  // The decision for an admitted call: every path checked, then routed;
  // counted in gitaly_praefect_method_types.
  StatusOr<http2::Route> Route(const http2::CallInfo& call);
  StatusOr<http2::Route> RouteUncounted(const http2::CallInfo& call);
  void CountMethodType(const protoregistry::MethodInfo& info);
  StatusOr<http2::Route> RouteRepositoryCall(const protoregistry::MethodInfo& info, std::string_view message,
                                             const http2::CallInfo& call);
  // The registered-repository path of RouteRepositoryCall.
  StatusOr<http2::Route> RouteRegisteredCall(const protoregistry::MethodInfo& info, std::string_view message,
                                             const http2::CallInfo& call, const nodes::VirtualStorage& vs,
                                             std::string_view relative_path);
  // Registers the transaction of a transactional mutator on `primary` and
  // adds its voters to `route` as secondaries; `others` (the replicas but
  // the primary) keeps those that are not voters. `existing`: null for a
  // creation.
  StatusOr<std::shared_ptr<TransactionCall>> StartTransaction(
      const nodes::VirtualStorage& vs, const nodes::Node& primary, const datastore::RepositoryMetadata* existing,
      std::vector<std::string>& others, const std::function<StatusOr<std::string>(const std::string&)>& rewrite_for,
      const http2::CallInfo& call, http2::Route* route);
  // Makes `route`'s commit run even when the proxy ends the call without it.
  static void CommitEvenIfAbandoned(http2::Route* route);
  StatusOr<http2::Route> RouteStorageCall(const protoregistry::MethodInfo& info, std::string_view message,
                                          const http2::CallInfo& call);
  // Channel, label, authorization and correlation id for `node`.
  http2::Route RouteTo(const nodes::Node& node, const http2::CallInfo& call);
  std::chrono::system_clock::time_point Now() const;

  // [auth], read once per call; replaced whole by SetAuth.
  struct AuthSettings {
    AuthSettings(std::string token, bool t) : key(std::move(token)), transitioning(t) {}
    auth::SigningKey key;
    bool transitioning = false;
  };

  const protoregistry::Registry* registry_;
  const nodes::NodeSet* nodes_;
  Router* router_;
  metrics::Metrics* metrics_;
  const Options options_;  // auth_token and auth_transitioning: see auth_
  std::atomic<std::shared_ptr<const AuthSettings>> auth_;
  datastore::Datastore* store_;
  std::unique_ptr<routing::RepositoryRouter> owned_router_;
  std::unique_ptr<PrimaryWatch> primary_watch_;  // with options_.transactions
  routing::RepositoryRouter* repository_router_ = nullptr;
};

// The metadata key of GitLab's correlation id.
inline constexpr std::string_view kCorrelationIdKey = "x-gitlab-correlation-id";

}  // namespace praefect::coordinator
