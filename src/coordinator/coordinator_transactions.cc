// The Coordinator's part in reference transactions: the voters of a
// transactional mutator become the route's secondaries, and its commit
// records what the votes changed even when the proxy ends the call early.
// The transaction itself is transaction_call.{h,cc}.
#include <algorithm>

#include "auth/token.h"
#include "coordinator/coordinator.h"

namespace praefect::coordinator {

StatusOr<std::shared_ptr<TransactionCall>> Coordinator::StartTransaction(
    const nodes::VirtualStorage& vs, const nodes::Node& primary, const datastore::RepositoryMetadata* existing,
    std::vector<std::string>& others, const std::function<StatusOr<std::string>(const std::string&)>& rewrite_for,
    const http2::CallInfo& call, http2::Route* route) {
  // Voters: the replicas that can vote now (healthy here, holding the
  // latest generation, reachable over a backchannel); the others stay
  // replication targets.
  const std::vector<std::string> up_to_date = existing != nullptr ? existing->UpToDate() : std::vector<std::string>();
  std::vector<const nodes::Node*> voters;
  std::vector<std::string> targets;
  for (const std::string& storage : others) {
    const nodes::Node* node = vs.FindNode(storage);
    const bool current = existing == nullptr ||
                         std::find(up_to_date.begin(), up_to_date.end(), storage) != up_to_date.end();
    if (node != nullptr && node->backchannel && node->healthy.load() && current) {
      voters.push_back(node);
    } else {
      targets.push_back(storage);
    }
  }
  std::vector<std::string> names;
  for (const nodes::Node* node : voters) names.push_back(node->storage);
  auto tx = TransactionCall::Register(options_.transactions, metrics_, vs.name, vs.nodes.size(), primary.storage,
                                      names, targets);
  if (!tx.ok()) return tx.status();
  const uint64_t id = (*tx)->id();
  // The primary votes too: its call goes over its backchannel connection.
  route->upstream = primary.voting_upstream;
  route->set_metadata.emplace_back(std::string(kReferenceTransactionKey),
                                   ReferenceTransactionMetadata(id, primary.storage, true));
  // Each secondary gets its own token; a client's never reaches any node.
  const std::string auth_key(auth::kAuthorizationMetadataKey);
  route->drop_metadata.push_back(auth_key);
  for (const nodes::Node* node : voters) {
    http2::Route::Secondary secondary;
    secondary.upstream = node->voting_upstream;
    secondary.label = node->Label();
    auto first = rewrite_for(node->storage);
    if (!first.ok()) return first.status();
    secondary.first_message = std::move(*first);
    for (const auto& [key, value] : route->set_metadata) {
      if (key != auth_key && key != kReferenceTransactionKey) secondary.set_metadata.emplace_back(key, value);
    }
    if (std::shared_ptr<const auth::SigningKey> key = node->Key(); !key->empty())
      secondary.set_metadata.emplace_back(auth_key, key->BearerV2(Now()));
    secondary.set_metadata.emplace_back(std::string(kReferenceTransactionKey),
                                        ReferenceTransactionMetadata(id, node->storage, false));
    route->secondaries.push_back(std::move(secondary));
  }
  std::shared_ptr<TransactionCall> shared = *tx;
  route->secondary_finished = [shared](size_t index, const Status& st) { shared->SecondaryFinished(index, st); };
  route->wait_for_secondary = [shared](size_t index) { return shared->WaitFor(index); };
  route->finalizer = [shared, inner = std::move(route->finalizer)](const Status& st) {
    shared->PrimaryFinished(st);
    if (inner) inner(st);
  };
  route->secondary_grace = options_.secondary_grace;
  route->abort = std::make_shared<http2::CallAbort>();
  primary_watch_->Watch(&primary, route->abort);
  route->log_fields.emplace_back("transaction.id", std::to_string(id));
  (void)call;
  others = std::move(targets);
  return shared;
}

void Coordinator::CommitEvenIfAbandoned(http2::Route* route) {
  // Holds the commit until the route dies: a call the proxy ended before
  // its commit (the client went away, its deadline passed) still records
  // what its votes changed, with the primary's status as the finalizer
  // heard it.
  struct Once {
    std::function<void(const Status&, http2::Route::CommitDone)> commit;
    std::mutex mu;
    Status primary = Cancelled("the call ended before the primary's status");
    bool ran = false;
    ~Once() {
      if (!ran) commit(primary, [](std::optional<Status>) {});
    }
  };
  auto once = std::make_shared<Once>();
  once->commit = std::move(route->commit);
  route->commit = [once](const Status& st, http2::Route::CommitDone done) {
    {
      std::lock_guard lock(once->mu);
      once->ran = true;
    }
    once->commit(st, std::move(done));
  };
  route->finalizer = [once, inner = std::move(route->finalizer)](const Status& st) {
    if (inner) inner(st);
    std::lock_guard lock(once->mu);
    once->primary = st;
  };
}

}  // namespace praefect::coordinator
