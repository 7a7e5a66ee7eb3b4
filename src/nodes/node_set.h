#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "auth/token.h"
#include "common/status_or.h"
#include "config/config.h"
#include "http2/director.h"

// The storage nodes praefect routes to: one grpc++ channel per node, and a
// background health checker (grpc.health.v1.Health/Check on an interval)
// whose verdict routing reads without locking.
namespace praefect::nodes {

// One configured node of a virtual storage. The channel is shared by every
// call to the node. `healthy` is written by the health checker only.
struct Node {
  std::string virtual_storage;
  std::string storage;  // the node's own storage name
  std::string address;  // as configured
  // What praefect signs its calls to the node with (a SIGHUP may replace
  // it: read it per call).
  std::string Token() const { return Key()->secret(); }
  // The same token as a signing key (which remembers its signatures).
  std::shared_ptr<const auth::SigningKey> Key() const {
    std::lock_guard lock(token_mu_);
    return key_;
  }
  void SetToken(std::string token) {
    auto key = std::make_shared<const auth::SigningKey>(std::move(token));
    std::lock_guard lock(token_mu_);
    key_ = std::move(key);
  }
  // praefect's own calls (health checks, replication) go through grpc++;
  // proxied calls through the data plane's connections to `upstream`.
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<const http2::Upstream> upstream;
  // With [backchannel] enabled (and not a tls:// node): the data plane's
  // connections that carry a backchannel, over which the node votes. Only
  // transactional writes take them; every other proxied call takes the
  // plain `upstream`, which costs a read nothing for the votes it never
  // casts. Null otherwise.
  std::shared_ptr<const http2::Upstream> voting_upstream;
  std::atomic<bool> healthy{false};
  // voting_upstream is set: the node can vote in transactions.
  bool backchannel = false;
  // "virtual storage \"default\", node \"gitaly-1\"" for messages.
  std::string Label() const;

 private:
  mutable std::mutex token_mu_;
  std::shared_ptr<const auth::SigningKey> key_ =
      std::make_shared<const auth::SigningKey>(std::string());  // GUARDED_BY(token_mu_)
};

struct VirtualStorage {
  std::string name;
  std::vector<std::unique_ptr<Node>> nodes;  // configuration order
  size_t primary = 0;  // index of `primary = true`, or of the first node
  int replication_factor = 0;  // default_replication_factor; 0: every node
  const Node& Primary() const { return *nodes[primary]; }
  // The node with storage name `storage`, or nullptr.
  const Node* FindNode(std::string_view storage) const;
};

// The grpc++ target and credentials for a configured node address
// (tcp://, tls://, unix:, dns:; see config/address.h).
struct DialTarget {
  std::string target;
  bool tls = false;
};
[[nodiscard]] StatusOr<DialTarget> ResolveAddress(std::string_view address);

// Interceptors of praefect's own calls to the nodes (metrics); one set per
// channel.
using MakeInterceptors =
    std::function<std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>()>;

// A channel for `address`; connects lazily (the first call dials). Its
// calls pass through `interceptors` when given.
[[nodiscard]] StatusOr<std::shared_ptr<grpc::Channel>> Dial(std::string_view address,
                                                            const grpc::ChannelArguments& args,
                                                            const MakeInterceptors& interceptors = nullptr);

// One grpc.health.v1.Health/Check of `channel` ("" service), bounded by
// `timeout`: OK when the node answers SERVING, else what went wrong.
[[nodiscard]] Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel, std::chrono::milliseconds timeout);

// Makes the TLS layer of a data-plane connection to a tls:// node, verifying
// the node's certificate for `server_name`.
using MakeClientTls = std::function<StatusOr<std::unique_ptr<http2::SecureLayer>>(const std::string& server_name)>;
// Makes the backchannel layer of a data-plane connection to a plain node
// (src/backchannel/client_layer.h); `peer` names the node in errors.
using MakeBackchannel = std::function<StatusOr<std::unique_ptr<http2::SecureLayer>>(const std::string& peer)>;

// The data plane's view of a node address: where to connect, the
// :authority of its requests, TLS or not. dns: targets are resolved with
// the system resolver (a name server given in dns://authority/ is not used;
// the log says so once).
[[nodiscard]] StatusOr<std::shared_ptr<const http2::Upstream>> UpstreamFor(std::string_view address,
                                                                           std::string label,
                                                                           const MakeClientTls& make_tls);

// Immutable after Create, except the `healthy` flags. Thread-safe.
class NodeSet {
 public:
  // Dials every node of `config` (lazily). Fails only on an address that
  // cannot be resolved to a target (config validation catches those first).
  // `make_tls` serves tls:// nodes on the data plane (may be empty when
  // there are none; a tls:// node then fails to start with why).
  // `make_backchannel` (may be empty) gives the connections to the nodes
  // that are not tls:// a backchannel ([backchannel] enabled): their Node's
  // `backchannel` is set. `interceptors` (may be empty) see praefect's own
  // calls on the nodes' channels (health checks, replication, ...).
  [[nodiscard]] static StatusOr<std::unique_ptr<NodeSet>> Create(const config::Config& config,
                                                                 const grpc::ChannelArguments& args,
                                                                 const MakeClientTls& make_tls = nullptr,
                                                                 const MakeBackchannel& make_backchannel = nullptr,
                                                                 const MakeInterceptors& interceptors = nullptr);
  ~NodeSet();
  NodeSet(const NodeSet&) = delete;
  NodeSet& operator=(const NodeSet&) = delete;

  const std::vector<VirtualStorage>& virtual_storages() const { return virtual_storages_; }
  // The virtual storage called `name`, or nullptr.
  const VirtualStorage* Find(std::string_view name) const;

  // Called after every health check of a node with its latency and
  // outcome (for gitaly_praefect_node_latency). Set before
  // StartHealthChecks; must not block.
  using HealthObserver = std::function<void(const Node&, std::chrono::nanoseconds latency, bool healthy)>;
  void SetHealthObserver(HealthObserver observer) { observer_ = std::move(observer); }
  // Called on the checker thread after every round of StartHealthChecks,
  // once each node's `healthy` holds that round's verdict. Set before
  // StartHealthChecks; must not block for long.
  void SetRoundObserver(std::function<void()> observer) { round_observer_ = std::move(observer); }

  // Checks every node once now (all in parallel, each bounded by
  // `timeout`) and records the verdicts. Blocks until all have answered.
  void CheckAll(std::chrono::milliseconds timeout);

  // Starts a thread that runs CheckAll(timeout) every `interval`, logging
  // each change of a node's health. Stopped by StopHealthChecks or the
  // destructor. Call at most once.
  void StartHealthChecks(std::chrono::milliseconds interval, std::chrono::milliseconds timeout);
  void StopHealthChecks();

  // Asks the health checker for a round now instead of at its next tick
  // (a call on the data path could not reach a node). Cheap; may be called
  // from any thread, often.
  void RequestCheck() const;

 private:
  NodeSet() = default;

  std::vector<VirtualStorage> virtual_storages_;
  HealthObserver observer_;
  std::function<void()> round_observer_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  mutable bool check_requested_ = false;  // GUARDED_BY(mu_)
  std::thread checker_;
};

}  // namespace praefect::nodes
