#include "transactions/voter.h"

#include <set>

#include "common/quote.h"

namespace praefect::transactions {

VotingPlan PrimaryVotingPlan(std::string_view primary, const std::vector<std::string>& secondaries) {
  const auto s = static_cast<uint32_t>(secondaries.size());
  VotingPlan plan;
  plan.voters.reserve(secondaries.size() + 1);
  plan.voters.push_back(Voter{std::string(primary), s + 1});
  for (const std::string& name : secondaries) plan.voters.push_back(Voter{name, 1});
  plan.threshold = s + 1;
  // With one secondary the threshold stays at the primary's weight: that
  // secondary may fail without failing the write.
  if (s > 1) plan.threshold += (s + 1) / 2;
  return plan;
}

Status ValidateVoters(const std::vector<Voter>& voters, uint32_t threshold) {
  if (voters.empty()) return InvalidArgument("transaction requires at least one node");
  uint64_t total = 0;
  std::set<std::string_view> names;
  for (const Voter& voter : voters) {
    if (!names.insert(voter.name).second) {
      return InvalidArgument("transactions cannot have duplicate nodes: " + QuoteForMessage(voter.name) +
                             " is registered twice");
    }
    total += voter.votes;
  }
  if (threshold > total || 2 * static_cast<uint64_t>(threshold) <= total) {
    return InvalidArgument("transaction has invalid threshold: " + std::to_string(threshold) +
                           " for a total weight of " + std::to_string(total) +
                           " (it must be more than half of the total and at most the total)");
  }
  return Status::Ok();
}

}  // namespace praefect::transactions
