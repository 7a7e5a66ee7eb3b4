#pragma once

// What the transactions tests share: votes that differ, the voter states by
// short names, and an outcome as text to compare. Include before
// test_support.h.

#include <string>

#include "transactions/subtransaction.h"
#include "transactions/transaction.h"

namespace praefect::transactions::testing {

// 20-byte votes, all different.
inline const std::string kX(20, 'x');
inline const std::string kY(20, 'y');
inline const std::string kZ(20, 'z');
inline const std::string kW(20, 'w');

inline constexpr VoterState kUndecided = VoterState::kUndecided;
inline constexpr VoterState kCommitted = VoterState::kCommitted;
inline constexpr VoterState kFailed = VoterState::kFailed;
inline constexpr VoterState kCanceled = VoterState::kCanceled;
inline constexpr VoterState kStopped = VoterState::kStopped;

// "p=committed a=failed b=canceled".
inline std::string States(const Outcome& outcome) {
  std::string out;
  for (const VoterOutcome& voter : outcome.voters) {
    if (!out.empty()) out += " ";
    out += voter.name + "=" + std::string(VoterStateName(voter.state));
  }
  return out;
}

}  // namespace praefect::transactions::testing
