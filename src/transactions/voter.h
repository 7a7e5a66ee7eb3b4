#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

// Who votes in a reference transaction and how much each vote weighs.
namespace praefect::transactions {

// A participant of a transaction: a storage (its name is the `node` of the
// gitaly-reference-transaction metadata the node gets) and its weight.
struct Voter {
  std::string name;
  uint32_t votes = 0;
};

// The voters of a transactional call and the weight that decides it.
struct VotingPlan {
  std::vector<Voter> voters;  // the primary first, then the secondaries in the order given
  uint32_t threshold = 0;
};

// Praefect's strategy: the primary weighs S + 1 (S secondaries), each
// secondary 1; the threshold is S + 1, plus ceil(S/2) when S > 1. The primary
// can never be outvoted, and with two or more secondaries it needs half of
// them (rounded up) to agree with it.
VotingPlan PrimaryVotingPlan(std::string_view primary, const std::vector<std::string>& secondaries);

// Praefect's checks of a registration: at least one voter, no name twice, a
// threshold that the voters can reach and that no two different hashes can
// both reach (more than half of the total weight). INVALID_ARGUMENT otherwise.
[[nodiscard]] Status ValidateVoters(const std::vector<Voter>& voters, uint32_t threshold);

}  // namespace praefect::transactions
