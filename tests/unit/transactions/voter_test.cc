#include "transactions/voter.h"

#include <string>
#include <vector>

#include "test_support.h"

using praefect::StatusCode;
using praefect::transactions::PrimaryVotingPlan;
using praefect::transactions::ValidateVoters;
using praefect::transactions::Voter;
using praefect::transactions::VotingPlan;

namespace {

// Reference §6: S secondaries → primary weight, total, threshold.
void test_weights_and_threshold_for_zero_to_four_secondaries(void**) {
  struct Row {
    size_t secondaries;
    uint32_t primary_votes;
    uint32_t total;
    uint32_t threshold;
  };
  const Row table[] = {{0, 1, 1, 1}, {1, 2, 3, 2}, {2, 3, 5, 4}, {3, 4, 7, 6}, {4, 5, 9, 7}};
  for (const Row& row : table) {
    std::vector<std::string> secondaries;
    for (size_t i = 0; i < row.secondaries; ++i) secondaries.push_back("gitaly-" + std::to_string(i + 2));
    VotingPlan plan = PrimaryVotingPlan("gitaly-1", secondaries);
    const std::string what = "S=" + std::to_string(row.secondaries);
    expect_that(plan.voters.size() == row.secondaries + 1, what + ": primary and secondaries");
    expect_that(plan.voters[0].name == "gitaly-1" && plan.voters[0].votes == row.primary_votes,
                what + ": primary first with weight " + std::to_string(row.primary_votes));
    uint32_t total = 0;
    for (size_t i = 0; i < plan.voters.size(); ++i) {
      total += plan.voters[i].votes;
      if (i > 0) expect_that(plan.voters[i].name == secondaries[i - 1] && plan.voters[i].votes == 1,
                             what + ": secondary " + std::to_string(i) + " in order, weight 1");
    }
    expect_that(total == row.total, what + ": total " + std::to_string(row.total));
    expect_that(plan.threshold == row.threshold,
                what + ": threshold " + std::to_string(row.threshold) + ", got " + std::to_string(plan.threshold));
    assert_status_ok(ValidateVoters(plan.voters, plan.threshold));
  }
}

void ExpectInvalid(const std::vector<Voter>& voters, uint32_t threshold, const std::string& message) {
  praefect::Status st = ValidateVoters(voters, threshold);
  expect_that(st.code() == StatusCode::kInvalidArgument, "INVALID_ARGUMENT, got " + st.ToString());
  expect_that(st.message() == message, "message \"" + message + "\", got \"" + st.message() + "\"");
}

void test_registration_errors(void**) {
  ExpectInvalid({}, 1, "transaction requires at least one node");
  ExpectInvalid({{"a", 1}, {"b", 1}, {"a", 1}}, 2, "transactions cannot have duplicate nodes: \"a\" is registered twice");
  // More than the voters can reach.
  ExpectInvalid({{"a", 2}, {"b", 1}}, 4,
                "transaction has invalid threshold: 4 for a total weight of 3 "
                "(it must be more than half of the total and at most the total)");
  // Half or less: two different hashes could both reach it.
  ExpectInvalid({{"a", 1}, {"b", 1}}, 1,
                "transaction has invalid threshold: 1 for a total weight of 2 "
                "(it must be more than half of the total and at most the total)");
  ExpectInvalid({{"a", 0}}, 0,
                "transaction has invalid threshold: 0 for a total weight of 0 "
                "(it must be more than half of the total and at most the total)");
  // The bounds themselves.
  assert_status_ok(ValidateVoters({{"a", 1}, {"b", 1}}, 2));
  assert_status_ok(ValidateVoters({{"a", 1}, {"b", 1}, {"c", 1}}, 2));
  // A voter of weight 0 takes part without counting (as in Praefect).
  assert_status_ok(ValidateVoters({{"a", 1}, {"b", 0}}, 1));
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_weights_and_threshold_for_zero_to_four_secondaries),
      cmocka_unit_test(test_registration_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
