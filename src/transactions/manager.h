#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "common/status_or.h"
#include "metrics/metrics.h"
#include "transactions/transaction.h"
#include "transactions/voter.h"

// Praefect's reference transactions: the nodes of a transactional call vote
// on the reference updates they are about to make, and each learns whether
// enough of them agreed.
namespace praefect::transactions {

// The bytes of a vote: a SHA-1, opaque to praefect.
inline constexpr size_t kVoteSize = 20;

// VoteTransactionRequest.phase. Praefect ignores it: every vote is the next
// subtransaction of its node, whatever its phase.
enum class Phase {
  kUnknown = 0,
  kPrepared = 1,
  kCommitted = 2,
  kSynchronized = 3,
};

// VoteTransactionResponse.state, with its wire values.
enum class VoteAnswer {
  kCommit = 0,  // the node's hash reached the threshold: go on
  kAbort = 1,   // another hash won, or none can win any more
  kStop = 2,    // the transaction was stopped (StopTransaction)
};

// The registry of this praefect's transactions, from registration to the
// end of the call. Ids come from a process-wide counter starting at 1 (as
// Praefect's; they mean something only to the praefect that registered
// them). Thread-safe: any number of votes may wait at once, each on its own
// thread. `metrics` may be null, and must otherwise outlive the Manager.
class Manager {
 public:
  explicit Manager(metrics::Metrics* metrics);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // A new transaction among `voters`, decided by `threshold` (see
  // PrimaryVotingPlan); its id. INVALID_ARGUMENT as ValidateVoters says.
  [[nodiscard]] StatusOr<uint64_t> Register(std::vector<Voter> voters, uint32_t threshold);

  // `node`'s next vote in transaction `id`: blocks until its subtransaction
  // is decided for it, then COMMIT, ABORT or STOP. Errors, as Praefect's
  // RefTransaction service returns them:
  // INVALID_ARGUMENT `invalid reference update hash: invalid vote length <n>`
  //   (hash not 20 bytes);
  // NOT_FOUND `transaction not found: <id>`;
  // INTERNAL `invalid node for transaction: "<node>"` (and `node already
  //   cast a vote: "<node>"` for a node voting again while its vote waits);
  // CANCELLED `transaction has been canceled`: the node was canceled
  //   (CancelVoter, Finish, or its own earlier vote withdrawn);
  // CANCELLED `context canceled` / DEADLINE_EXCEEDED `context deadline
  //   exceeded`: `stop` was requested or `deadline` passed before the vote
  //   was decided; the vote is then withdrawn (its weight no longer counts).
  // A vote decided by the time the call notices its end keeps its answer.
  [[nodiscard]] StatusOr<VoteAnswer> Vote(
      uint64_t id, std::string_view node, std::string_view hash, Phase phase,
      std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
      std::stop_token stop = {});

  // StopTransaction: the undecided voters of every subtransaction get STOP,
  // decided ones keep their result, later votes get STOP. OK again when
  // stopped already. NOT_FOUND as Vote.
  [[nodiscard]] Status Stop(uint64_t id);

  // `node`'s call failed (or ended) and it will not vote again: see
  // Transaction::CancelVoter. Withdrawing its weight may make the threshold
  // unreachable, and the voters waiting then get ABORT. NOT_FOUND and
  // INTERNAL as Vote.
  [[nodiscard]] Status CancelVoter(uint64_t id, std::string_view node);

  // The call is over: the transaction is removed, votes still waiting get
  // CANCELLED, later ones NOT_FOUND. What the voters did, for the
  // coordinator's records and its "transaction completed" log line.
  // NOT_FOUND as Vote.
  [[nodiscard]] StatusOr<Outcome> Finish(uint64_t id);

  // What the voters did so far, as Finish says it, without ending anything:
  // a voter still waiting is kUndecided. NOT_FOUND as Vote.
  [[nodiscard]] StatusOr<Outcome> Snapshot(uint64_t id) const;

  // Transactions registered and not finished.
  size_t active() const;

 private:
  // A transaction and what its waiting voters wait on.
  struct Entry {
    explicit Entry(Transaction t) : tx(std::move(t)) {}
    std::mutex mu;
    std::condition_variable cv;  // notified whenever tx changes
    Transaction tx;              // GUARDED_BY(mu)
  };

  // What a vote came to, as transactions_total counts it.
  struct Counted {
    StatusOr<VoteAnswer> answer;
    std::string_view action;
  };

  std::shared_ptr<Entry> Find(uint64_t id) const;
  Counted Await(uint64_t id, std::string_view node, std::string_view hash,
                std::chrono::steady_clock::time_point deadline, const std::stop_token& stop);
  void Count(std::string_view action, double by = 1.0);

  // The series, made once (none without metrics).
  std::vector<std::pair<std::string_view, metrics::Counter>> actions_;
  std::optional<metrics::Histogram> delay_;
  std::optional<metrics::Histogram> subtransactions_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Entry>> transactions_;  // GUARDED_BY(mu_)
};

}  // namespace praefect::transactions
