#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// One round of voting of a reference transaction.
namespace praefect::transactions {

// Where a voter stands in one subtransaction (Praefect's VoteResult).
enum class VoterState {
  kUndecided,  // has not voted, or voted and waits for the outcome
  kCommitted,  // voted for the hash that reached the threshold
  kFailed,     // voted for another hash, or the threshold became unreachable
  kCanceled,   // withdrawn: its call failed or ended, or the transaction was finished
  kStopped,    // the transaction was stopped (StopTransaction) before it was decided
};

// "undecided", "committed", "failed", "canceled", "stopped".
std::string_view VoterStateName(VoterState state);

// One round of voting among all the voters of a transaction: each voter casts
// one hash, weighted by its votes. The hash with the most weight is the
// leader; once it reaches the threshold the subtransaction is decided: every
// voter that voted commits when it voted for the leader and fails otherwise,
// and a voter that votes later is judged against the same leader when it
// arrives. When the leader plus the weight of the voters still to vote cannot
// reach the threshold any more, the subtransaction is decided too and every
// voter that voted fails. Not thread-safe (Transaction's owner locks).
class Subtransaction {
 public:
  // `weights[i]` is voter i's weight; voters listed in `canceled` start
  // canceled (they were canceled in the previous subtransaction).
  Subtransaction(const std::vector<uint32_t>& weights, uint64_t threshold, const std::vector<size_t>& canceled = {});

  // Casts voter's hash and decides what can be decided.
  // REQUIRES: voter < size(), state(voter) == kUndecided, !voted(voter).
  void Cast(size_t voter, std::string hash);

  // Withdraws an undecided voter: canceled, its weight (if it voted) no
  // longer counted, which may make the threshold unreachable. Returns false,
  // changing nothing, when the voter is decided already.
  // REQUIRES: voter < size().
  bool Cancel(size_t voter);

  // Every undecided voter becomes stopped (Stop) or canceled (CancelAll);
  // decided voters keep their result. The subtransaction is decided after.
  void Stop();
  void CancelAll();

  // Quorum reached or unreachable, stopped or canceled: waiting voters are
  // released. Set once.
  bool decided() const { return decided_; }
  size_t size() const { return slots_.size(); }
  // REQUIRES: voter < size().
  VoterState state(size_t voter) const { return slots_[voter].state; }
  bool voted(size_t voter) const { return slots_[voter].vote.has_value(); }

 private:
  struct Slot {
    uint32_t weight = 0;
    VoterState state = VoterState::kUndecided;
    std::optional<std::string> vote;
  };

  // Judges the undecided voters that voted, when the outcome is known.
  void Decide();
  // The hash with the most weight (nullptr when nobody voted) and its weight.
  std::pair<const std::string*, uint64_t> Leader() const;
  void SetUndecided(VoterState state);

  std::vector<Slot> slots_;
  std::vector<std::pair<std::string, uint64_t>> weight_by_hash_;  // a few voters: a vector is enough
  uint64_t threshold_;
  bool decided_ = false;
};

}  // namespace praefect::transactions
