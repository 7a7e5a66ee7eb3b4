#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "metrics/metrics.h"
#include "transactions/manager.h"

// A transactional mutator's side of the coordinator
// (../shared/reference/transactions.md §1–3, §8): which methods vote, the
// metadata each node gets, and who is up to date after the call.
namespace praefect::coordinator {

// Gitaly v16's transactional methods (§1) that are routed as such: the
// repository-scoped mutators that vote. RemoveRepository and
// ReplicateRepository are in Praefect's list but praefect answers them
// itself, so they are not here.
[[nodiscard]] bool IsTransactional(std::string_view method);

// The value of `gitaly-reference-transaction` for `node`: standard padded
// base64 of {"id":<id>,"node":"<node>","primary":<bool>}, keys in that order.
[[nodiscard]] std::string ReferenceTransactionMetadata(uint64_t id, std::string_view node, bool primary);

inline constexpr std::string_view kReferenceTransactionKey = "gitaly-reference-transaction";

// Who is up to date after a transactional call (§8).
struct Replicas {
  // False: the call changed nothing anywhere (the primary failed before any
  // vote, or it never voted in the only subtransaction): nothing recorded.
  bool record = false;
  std::vector<std::string> updated;  // secondaries that committed with the primary
  // Every other replica and why it gets a replication job: "outdated" (not
  // a voter), "no-votes", "missing-tx-state", "primary-not-committed",
  // "node-error-status", "node-not-committed".
  std::vector<std::pair<std::string, std::string_view>> outdated;
};

// §8's decision. `outcome`: the transaction as Finish left it (nullopt: its
// state could not be read); `secondaries`: each voter but the primary with
// its call's status; `targets`: the replicas that were not voters.
[[nodiscard]] Replicas DecideReplicas(const std::optional<transactions::Outcome>& outcome, std::string_view primary,
                                      const Status& primary_status,
                                      const std::vector<std::pair<std::string, Status>>& secondaries,
                                      const std::vector<std::string>& targets);

// One transactional call: registered with the manager when routed, told of
// each secondary's end (a failed one is canceled, so that its weight no
// longer counts), and finished once every node's call ended. Thread-safe.
// A call that is never finished (the client went away, the proxy failed it)
// is finished when the last reference goes.
class TransactionCall {
 public:
  // Registers the transaction of `primary` and `secondaries` (the nodes'
  // storage names) with Praefect's voting plan.
  static StatusOr<std::shared_ptr<TransactionCall>> Register(transactions::Manager* manager,
                                                             metrics::Metrics* metrics, std::string virtual_storage,
                                                             size_t nodes_in_virtual_storage, std::string primary,
                                                             std::vector<std::string> secondaries,
                                                             std::vector<std::string> targets);
  ~TransactionCall();
  TransactionCall(const TransactionCall&) = delete;
  TransactionCall& operator=(const TransactionCall&) = delete;

  uint64_t id() const { return id_; }
  const std::string& primary() const { return primary_; }
  const std::vector<std::string>& secondaries() const { return secondaries_; }

  // The primary's call ended with `status`.
  void PrimaryFinished(const Status& status);
  // Secondary `index`'s call ended with `status`.
  void SecondaryFinished(size_t index, const Status& status);
  // Whether the proxy should wait for secondary `index` once the primary's
  // call ended (OK or not): not when it failed or was canceled in the
  // transaction; a secondary that committed with the primary only finishes
  // its call.
  bool WaitFor(size_t index) const;

  // Ends the transaction and says who is up to date; counts the replicas in
  // gitaly_praefect_tx_replications_total and logs `transaction completed`.
  // Once; later calls return what the first did.
  Replicas Finish(const Status& primary_status, std::string_view correlation_id);

 private:
  TransactionCall(transactions::Manager* manager, metrics::Metrics* metrics, uint64_t id, std::string primary,
                  std::vector<std::string> secondaries, std::vector<std::string> targets);

  transactions::Manager* const manager_;
  metrics::Metrics* const metrics_;
  const uint64_t id_;
  const std::string primary_;
  const std::vector<std::string> secondaries_;
  const std::vector<std::string> targets_;
  mutable std::mutex mu_;
  std::vector<std::optional<Status>> statuses_;  // GUARDED_BY(mu_), by secondary
  std::optional<Replicas> finished_;              // GUARDED_BY(mu_)
};

}  // namespace praefect::coordinator
