#include "transactions/subtransaction.h"

#include <cassert>

namespace praefect::transactions {

std::string_view VoterStateName(VoterState state) {
  switch (state) {
    case VoterState::kUndecided:
      return "undecided";
    case VoterState::kCommitted:
      return "committed";
    case VoterState::kFailed:
      return "failed";
    case VoterState::kCanceled:
      return "canceled";
    case VoterState::kStopped:
      return "stopped";
  }
  return "unknown";
}

Subtransaction::Subtransaction(const std::vector<uint32_t>& weights, uint64_t threshold,
                               const std::vector<size_t>& canceled)
    : threshold_(threshold) {
  slots_.reserve(weights.size());
  for (uint32_t weight : weights) slots_.push_back(Slot{weight, VoterState::kUndecided, std::nullopt});
  for (size_t voter : canceled) slots_[voter].state = VoterState::kCanceled;
}

void Subtransaction::Cast(size_t voter, std::string hash) {
  Slot& slot = slots_[voter];
  assert(slot.state == VoterState::kUndecided && !slot.vote);
  auto it = weight_by_hash_.begin();
  while (it != weight_by_hash_.end() && it->first != hash) ++it;
  if (it == weight_by_hash_.end()) {
    weight_by_hash_.emplace_back(hash, slot.weight);
  } else {
    it->second += slot.weight;
  }
  slot.vote = std::move(hash);
  Decide();
}

bool Subtransaction::Cancel(size_t voter) {
  Slot& slot = slots_[voter];
  if (slot.state != VoterState::kUndecided) return false;
  if (slot.vote) {
    // An undecided voter that voted means the subtransaction is not decided:
    // its weight can still be taken back.
    for (auto& [hash, weight] : weight_by_hash_) {
      if (hash == *slot.vote) weight -= slot.weight;
    }
  }
  slot.state = VoterState::kCanceled;
  if (!decided_) Decide();
  return true;
}

void Subtransaction::Stop() { SetUndecided(VoterState::kStopped); }

void Subtransaction::CancelAll() { SetUndecided(VoterState::kCanceled); }

void Subtransaction::SetUndecided(VoterState state) {
  for (Slot& slot : slots_) {
    if (slot.state == VoterState::kUndecided) slot.state = state;
  }
  decided_ = true;
}

std::pair<const std::string*, uint64_t> Subtransaction::Leader() const {
  const std::string* leader = nullptr;
  uint64_t most = 0;
  for (const auto& [hash, weight] : weight_by_hash_) {
    if (weight > most) {
      leader = &hash;
      most = weight;
    }
  }
  return {leader, most};
}

void Subtransaction::Decide() {
  auto [leader, most] = Leader();
  const bool quorum = most >= threshold_;
  if (!quorum) {
    uint64_t outstanding = 0;
    for (const Slot& slot : slots_) {
      if (slot.state == VoterState::kUndecided && !slot.vote) outstanding += slot.weight;
    }
    if (most + outstanding >= threshold_) return;  // the voters to come may still reach it
  }
  // Voters that have not voted stay undecided: they are judged when they
  // vote (against the same leader, or failed when the threshold became
  // unreachable, which their vote cannot change).
  for (Slot& slot : slots_) {
    if (slot.state != VoterState::kUndecided || !slot.vote) continue;
    slot.state = quorum && *slot.vote == *leader ? VoterState::kCommitted : VoterState::kFailed;
  }
  decided_ = true;
}

}  // namespace praefect::transactions
