#pragma once

#include <chrono>
#include <functional>

#include "coordinator/coordinator.h"
#include "datastore/datastore.h"
#include "nodes/node_set.h"
#include "proxy/director.h"

// The Director the proxy talks to: the calls praefect answers itself
// (RepositoryExists from the datastore, ServerInfo aggregated per virtual
// storage) are answered here, as local responses on the same listeners;
// every other call goes to the Coordinator. Both kinds are admitted from
// their headers before anything of the request is read, with the same
// token check.
namespace praefect::services {

struct LocalDirectorOptions {
  // Runs the answers, which block (datastore, node calls), off gRPC's
  // threads. Required.
  std::function<void(std::function<void()>)> executor;
  // How long ServerInfo waits for each node.
  std::chrono::milliseconds node_timeout{5000};
};

// Thread-safe. The pointees must outlive it.
class LocalDirector final : public proxy::Director {
 public:
  LocalDirector(coordinator::Coordinator* coordinator, const nodes::NodeSet* nodes, datastore::Datastore* store,
                LocalDirectorOptions options);

  [[nodiscard]] Status Admit(const proxy::CallInfo& call) override;
  void Direct(const proxy::CallInfo& call, Done done) override;

 private:
  coordinator::Coordinator* const coordinator_;
  const nodes::NodeSet* const nodes_;
  datastore::Datastore* const store_;
  const LocalDirectorOptions options_;
};

}  // namespace praefect::services
