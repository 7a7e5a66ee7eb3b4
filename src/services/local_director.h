#pragma once

#include <atomic>
#include <chrono>
#include <functional>

#include "coordinator/coordinator.h"
#include "datastore/datastore.h"
#include "datastore/operator_store.h"
#include "nodes/node_set.h"
#include "services/ref_transaction.h"
#include "http2/director.h"

// The Director the data plane talks to: the calls praefect answers itself
// are answered here, as local responses on the same listeners —
// grpc.health.v1.Health (no token needed, as on Gitaly), RepositoryExists
// from the datastore, ServerInfo aggregated per virtual storage,
// gitaly.PraefectInfoService (services/praefect_info.h),
// gitaly.RefTransaction (services/ref_transaction.h) — and every
// other call goes to the Coordinator. All are admitted from their headers
// before anything of the request is read, with the same token check.
namespace praefect::services {

struct LocalDirectorOptions {
  // Runs the answers, which block (datastore, node calls), off gRPC's
  // threads. Required.
  std::function<void(std::function<void()>)> executor;
  // How long ServerInfo waits for each node.
  std::chrono::milliseconds node_timeout{5000};
  // PraefectInfoService: the operators' view of the metadata (null without
  // a database; must outlive the director) and the health quorum window.
  datastore::OperatorStore* operator_store = nullptr;
  std::chrono::milliseconds health_window{10000};
  // gitaly.RefTransaction: the votes of this praefect's transactions (null:
  // the calls are UNIMPLEMENTED). Must outlive the director.
  RefTransactionService* ref_transactions = nullptr;
};

// Thread-safe. The pointees must outlive it.
class LocalDirector final : public http2::Director {
 public:
  LocalDirector(coordinator::Coordinator* coordinator, const nodes::NodeSet* nodes, datastore::Datastore* store,
                LocalDirectorOptions options);

  [[nodiscard]] Status Admit(const http2::CallInfo& call) override;
  void Direct(const http2::CallInfo& call, Done done) override;

  // What the health service answers: SERVING until the server stops.
  void set_serving(bool serving) { serving_ = serving; }

 private:
  // Dataloss, streamed: its messages go to the client as the datastore's
  // pages are read (on the executor's thread).
  void StreamDataloss(const http2::CallInfo& call, const Done& done);
  // VoteTransaction and StopTransaction, answered on the service's threads.
  void AnswerRefTransaction(const http2::CallInfo& call, Done done);

  coordinator::Coordinator* const coordinator_;
  const nodes::NodeSet* const nodes_;
  datastore::Datastore* const store_;
  const LocalDirectorOptions options_;
  std::atomic<bool> serving_{true};
};

}  // namespace praefect::services
