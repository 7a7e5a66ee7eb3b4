#pragma once

#include <grpcpp/grpcpp.h>

#include "datastore/datastore.h"
#include "nodes/node_set.h"
#include "repository-service.pb.h"
#include "services/server_service.h"

namespace praefect::services {

// RepositoryService/RepositoryExists answered from the datastore, as
// Praefect does: a repository exists when it is registered. Only this one
// method of gitaly.RepositoryService is registered here (by hand, as the
// generated code registers methods); every other method of the service stays
// with the proxy. Thread-safe; the pointees must outlive the service.
class RepositoryExistsService final : public grpc::Service {
 public:
  RepositoryExistsService(const nodes::NodeSet* nodes, datastore::Datastore* store, Authenticator authenticate);

  // The request is taken as bytes and read with the proxy's own reader, so
  // that a malformed one is INVALID_ARGUMENT (grpc++'s typed handler would
  // answer INTERNAL) and its path passes the same checks as every routed
  // call (coordinator/request_paths.h).
  grpc::Status RepositoryExists(grpc::ServerContext* ctx, const grpc::ByteBuffer* req, grpc::ByteBuffer* resp);

 private:
  const nodes::NodeSet* nodes_;
  datastore::Datastore* store_;
  const Authenticator authenticate_;
};

}  // namespace praefect::services
