#include "transactions/transaction.h"

#include <utility>

#include "common/quote.h"

namespace praefect::transactions {

const VoterOutcome* Outcome::Find(std::string_view node) const {
  for (const VoterOutcome& voter : voters) {
    if (voter.name == node) return &voter;
  }
  return nullptr;
}

bool Outcome::Committed(std::string_view node) const {
  const VoterOutcome* voter = Find(node);
  return voter != nullptr && voter->state == VoterState::kCommitted;
}

bool Outcome::Voted(std::string_view node) const {
  const VoterOutcome* voter = Find(node);
  return voter != nullptr && voter->voted;
}

size_t Outcome::committed() const {
  size_t n = 0;
  for (const VoterOutcome& voter : voters) n += voter.state == VoterState::kCommitted ? 1 : 0;
  return n;
}

std::string Outcome::CommittedFigure() const {
  return std::to_string(committed()) + "/" + std::to_string(voters.size());
}

StatusOr<Transaction> Transaction::Create(uint64_t id, std::vector<Voter> voters, uint32_t threshold) {
  if (Status st = ValidateVoters(voters, threshold); !st.ok()) return st;
  return Transaction(id, std::move(voters), threshold);
}

Transaction::Transaction(uint64_t id, std::vector<Voter> voters, uint32_t threshold)
    : id_(id), voters_(std::move(voters)), threshold_(threshold), call_failed_(voters_.size(), false) {
  weights_.reserve(voters_.size());
  for (const Voter& voter : voters_) weights_.push_back(voter.votes);
}

std::optional<size_t> Transaction::VoterIndex(std::string_view node) const {
  for (size_t i = 0; i < voters_.size(); ++i) {
    if (voters_[i].name == node) return i;
  }
  return std::nullopt;
}

Subtransaction& Transaction::AddSubtransaction() {
  std::vector<size_t> canceled;
  for (size_t i = 0; i < voters_.size(); ++i) {
    bool was_canceled = !subtransactions_.empty() && subtransactions_.back().state(i) == VoterState::kCanceled;
    if (was_canceled || call_failed_[i]) canceled.push_back(i);
  }
  return subtransactions_.emplace_back(weights_, threshold_, canceled);
}

StatusOr<Ballot> Transaction::Cast(std::string_view node, std::string_view hash) {
  std::optional<size_t> voter = VoterIndex(node);
  if (!voter) return Internal("invalid node for transaction: " + QuoteForMessage(node));
  Ballot ballot;
  ballot.voter = *voter;
  if (state_ != State::kOpen) {
    ballot.early = state_ == State::kStopped ? VoterState::kStopped : VoterState::kCanceled;
    return ballot;
  }
  for (size_t k = 0; k < subtransactions_.size(); ++k) {
    Subtransaction& sub = subtransactions_[k];
    VoterState state = sub.state(*voter);
    if (state == VoterState::kCommitted) continue;
    ballot.subtransaction = k;
    if (state != VoterState::kUndecided) {
      ballot.early = state;  // a node that did not commit a subtransaction cannot go on
      return ballot;
    }
    if (sub.voted(*voter)) return Internal("node already cast a vote: " + QuoteForMessage(node));
    sub.Cast(*voter, std::string(hash));
    return ballot;
  }
  // The node committed every subtransaction so far: this vote opens the next.
  ballot.subtransaction = subtransactions_.size();
  AddSubtransaction().Cast(*voter, std::string(hash));
  return ballot;
}

VoterState Transaction::Result(const Ballot& ballot) const {
  if (ballot.early) return *ballot.early;
  return subtransactions_[ballot.subtransaction].state(ballot.voter);
}

bool Transaction::Withdraw(const Ballot& ballot) {
  if (ballot.early) return false;
  return subtransactions_[ballot.subtransaction].Cancel(ballot.voter);
}

Status Transaction::CancelVoter(std::string_view node) {
  std::optional<size_t> voter = VoterIndex(node);
  if (!voter) return Internal("invalid node for transaction: " + QuoteForMessage(node));
  if (state_ != State::kOpen) return Status::Ok();  // its undecided votes are stopped or canceled already
  call_failed_[*voter] = true;
  bool out = false;  // failed, canceled or stopped somewhere, or canceled now
  for (Subtransaction& sub : subtransactions_) {
    VoterState state = sub.state(*voter);
    if (state == VoterState::kUndecided) {
      (void)sub.Cancel(*voter);  // undecided: always withdrawn
      out = true;
    } else if (state != VoterState::kCommitted) {
      out = true;
    }
  }
  // It committed everything so far: its last subtransaction must still say
  // that it did not see the call through.
  if (!out) (void)AddSubtransaction();
  return Status::Ok();
}

bool Transaction::Stop() {
  if (state_ == State::kStopped) return false;
  for (Subtransaction& sub : subtransactions_) sub.Stop();
  state_ = State::kStopped;
  return true;
}

void Transaction::Cancel() {
  for (Subtransaction& sub : subtransactions_) sub.CancelAll();
  // A stopped transaction stays stopped: its outcome says so (the
  // coordinator records nothing for a transaction stopped before the
  // primary committed anything).
  if (state_ != State::kStopped) state_ = State::kCanceled;
}

Outcome Transaction::outcome() const {
  Outcome outcome;
  outcome.id = id_;
  outcome.subtransactions = subtransactions_.size();
  outcome.voters.reserve(voters_.size());
  for (size_t i = 0; i < voters_.size(); ++i) {
    VoterOutcome voter{voters_[i].name, VoterState::kCanceled, false, 0};
    while (voter.committed_subtransactions < subtransactions_.size() &&
           subtransactions_[voter.committed_subtransactions].state(i) == VoterState::kCommitted)
      ++voter.committed_subtransactions;
    if (!subtransactions_.empty()) {
      voter.state = subtransactions_.back().state(i);
      voter.voted = subtransactions_.back().voted(i);
    } else if (state_ == State::kStopped) {
      voter.state = VoterState::kStopped;
    } else if (state_ == State::kOpen) {
      voter.state = VoterState::kUndecided;
    }
    outcome.voters.push_back(std::move(voter));
  }
  return outcome;
}

}  // namespace praefect::transactions
