#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/status_or.h"
#include "transactions/subtransaction.h"
#include "transactions/voter.h"

namespace praefect::transactions {

// Where a node's vote went. The node waits until Transaction::Result of its
// ballot is no longer kUndecided.
struct Ballot {
  size_t voter = 0;
  size_t subtransaction = 0;
  // Set when the vote was answered without being cast: the node failed, was
  // canceled or stopped in an earlier subtransaction, or the transaction was
  // stopped or finished.
  std::optional<VoterState> early;
};

// A voter as the transaction ended, as of its last subtransaction.
struct VoterOutcome {
  std::string name;
  // Never kUndecided once the transaction is finished: the undecided
  // become canceled.
  VoterState state = VoterState::kCanceled;
  bool voted = false;  // cast a vote in the last subtransaction
  // Subtransactions it committed, from the first on (a voter that did not
  // commit one commits none after it).
  size_t committed_subtransactions = 0;
};

// What the coordinator records after a transactional call (who is up to date).
struct Outcome {
  uint64_t id = 0;
  size_t subtransactions = 0;
  std::vector<VoterOutcome> voters;  // in the order they were registered

  // nullptr for a name that is not a voter.
  const VoterOutcome* Find(std::string_view node) const;
  bool Committed(std::string_view node) const;
  bool Voted(std::string_view node) const;
  size_t committed() const;
  // "<committed>/<voters>": transaction.committed of the "transaction
  // completed" log line.
  std::string CommittedFigure() const;
};

// A reference transaction: its voters go through a sequence of
// subtransactions, the k-th vote of a node going to the k-th subtransaction
// (created when its first vote arrives). A node that did not commit a
// subtransaction gets that result for each of its later votes. The vote's
// `phase` plays no part, as in Praefect. Not thread-safe: Manager locks it.
class Transaction {
 public:
  // Praefect's validation (ValidateVoters).
  static StatusOr<Transaction> Create(uint64_t id, std::vector<Voter> voters, uint32_t threshold);

  uint64_t id() const { return id_; }
  const std::vector<Voter>& voters() const { return voters_; }
  size_t subtransactions() const { return subtransactions_.size(); }

  // Casts `node`'s next vote. INTERNAL for a name that is not a voter
  // (`invalid node for transaction: "<n>"`) and for a node that votes again
  // while its previous vote waits.
  // REQUIRES: hash is the 20 bytes of a vote (Manager checks).
  [[nodiscard]] StatusOr<Ballot> Cast(std::string_view node, std::string_view hash);

  // The ballot's outcome so far.
  VoterState Result(const Ballot& ballot) const;

  // The ballot's voter stopped waiting (its Vote call was canceled or timed
  // out): it is canceled in that subtransaction, its weight withdrawn.
  // Returns false when the subtransaction had decided its vote already.
  bool Withdraw(const Ballot& ballot);

  // The node's call failed, so it will not vote again: it is canceled in
  // every subtransaction where it is undecided, its weight withdrawn, and it
  // starts canceled in every subtransaction created later. When it committed
  // every subtransaction (or there is none yet), a new subtransaction is
  // created with it canceled, as Praefect does: its last subtransaction then
  // says it did not commit. INTERNAL for a name that is not a voter.
  [[nodiscard]] Status CancelVoter(std::string_view node);

  // StopTransaction: every undecided voter of every subtransaction is
  // stopped, decided ones keep their result, no subtransaction is created
  // after. Returns false when the transaction was stopped already (nothing
  // changes).
  bool Stop();

  // The transaction ends: undecided voters become canceled and later votes
  // get canceled.
  void Cancel();

  // The voters as of the last subtransaction; without any, every voter is
  // undecided, stopped or canceled as the transaction is.
  Outcome outcome() const;

 private:
  enum class State { kOpen, kStopped, kCanceled };

  Transaction(uint64_t id, std::vector<Voter> voters, uint32_t threshold);

  std::optional<size_t> VoterIndex(std::string_view node) const;
  // A subtransaction after the last one; voters canceled in the last one
  // and voters whose call failed start canceled.
  Subtransaction& AddSubtransaction();

  uint64_t id_;
  std::vector<Voter> voters_;
  std::vector<uint32_t> weights_;
  uint32_t threshold_;
  State state_ = State::kOpen;
  std::vector<bool> call_failed_;  // by voter: CancelVoter was called
  std::vector<Subtransaction> subtransactions_;
};

}  // namespace praefect::transactions
