#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "nodes/node_set.h"
#include "server.grpc.pb.h"

// gitaly.ServerService as praefect answers it: ServerInfo aggregates the
// nodes of each virtual storage, so GitLab sees one storage per virtual
// storage.
namespace praefect::services {

// Returns OK or the reason a call must be refused (praefect's [auth] check).
using Authenticator = std::function<Status(const grpc::ServerContext&)>;

// Thread-safe. `nodes` must outlive the service.
class ServerService final : public gitaly::ServerService::Service {
 public:
  ServerService(const nodes::NodeSet* nodes, Authenticator authenticate,
                std::chrono::milliseconds node_timeout = std::chrono::seconds(5));

  // For each virtual storage, asks every node (in parallel, each bounded by
  // the node timeout) and reports one StorageStatus named after the virtual
  // storage: readable when a node that answered can read, writeable when
  // the primary can write, fs_type of the primary, and a filesystem id
  // derived from the virtual storage's name (stable across praefects and
  // restarts). server_version and git_version are those of the first node
  // that answered. Nodes that do not answer are logged and skipped.
  grpc::Status ServerInfo(grpc::ServerContext* ctx, const gitaly::ServerInfoRequest* req,
                          gitaly::ServerInfoResponse* resp) override;

 private:
  const nodes::NodeSet* nodes_;
  const Authenticator authenticate_;
  const std::chrono::milliseconds node_timeout_;
};

// A UUID (RFC 9562 layout, version 8) from the SHA-256 of `name`.
std::string DeriveFilesystemId(std::string_view name);

}  // namespace praefect::services
