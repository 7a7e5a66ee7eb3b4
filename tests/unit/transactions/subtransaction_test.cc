#include "transactions/subtransaction.h"

#include <string>
#include <vector>

#include "votes.h"
#include "test_support.h"

using praefect::transactions::Subtransaction;
using praefect::transactions::VoterState;
using praefect::transactions::VoterStateName;
using praefect::transactions::testing::kCanceled;
using praefect::transactions::testing::kCommitted;
using praefect::transactions::testing::kFailed;
using praefect::transactions::testing::kStopped;
using praefect::transactions::testing::kUndecided;
using praefect::transactions::testing::kX;
using praefect::transactions::testing::kY;
using praefect::transactions::testing::kZ;

namespace {

void ExpectStates(const Subtransaction& sub, const std::vector<VoterState>& want, const std::string& what) {
  std::string got;
  std::string wanted;
  for (size_t i = 0; i < sub.size(); ++i) {
    got += std::string(VoterStateName(sub.state(i))) + " ";
    wanted += std::string(VoterStateName(want[i])) + " ";
  }
  expect_that(got == wanted, what + ": states " + wanted + ", got " + got);
}

void test_unanimous_votes_commit_once_the_threshold_is_reached(void**) {
  // Primary (3) and two secondaries, threshold 4: the primary and one
  // secondary decide.
  Subtransaction sub({3, 1, 1}, 4);
  sub.Cast(0, kX);
  assert_false(sub.decided());
  ExpectStates(sub, {kUndecided, kUndecided, kUndecided}, "primary alone");
  sub.Cast(1, kX);
  assert_true(sub.decided());
  ExpectStates(sub, {kCommitted, kCommitted, kUndecided}, "threshold reached");
  // The last voter is judged on arrival.
  sub.Cast(2, kX);
  ExpectStates(sub, {kCommitted, kCommitted, kCommitted}, "late voter agreeing");
}

void test_an_outvoted_secondary_fails_and_the_others_commit(void**) {
  Subtransaction sub({3, 1, 1}, 4);
  sub.Cast(2, kY);  // the odd one votes first: nothing is decided yet
  ExpectStates(sub, {kUndecided, kUndecided, kUndecided}, "one disagreeing vote");
  sub.Cast(0, kX);
  assert_false(sub.decided());
  sub.Cast(1, kX);
  assert_true(sub.decided());
  ExpectStates(sub, {kCommitted, kCommitted, kFailed}, "quorum for X");

  // Voting after the decision: judged against the same leader.
  Subtransaction late({3, 1, 1}, 4);
  late.Cast(0, kX);
  late.Cast(1, kX);
  late.Cast(2, kY);
  ExpectStates(late, {kCommitted, kCommitted, kFailed}, "late voter disagreeing");
}

void test_every_voter_that_voted_fails_when_quorum_becomes_impossible(void**) {
  // Three equal voters, threshold 2, three different hashes.
  Subtransaction sub({1, 1, 1}, 2);
  sub.Cast(0, kX);
  sub.Cast(1, kY);
  assert_false(sub.decided());  // 1 + 1 outstanding can still reach 2
  sub.Cast(2, kZ);
  assert_true(sub.decided());
  ExpectStates(sub, {kFailed, kFailed, kFailed}, "all different");

  // Decided before everyone voted: the voters still to come cannot help.
  Subtransaction early({1, 1, 1, 1}, 3);
  early.Cast(1, kY);
  early.Cast(2, kZ);
  early.Cast(0, kX);
  assert_true(early.decided());
  ExpectStates(early, {kFailed, kFailed, kFailed, kUndecided}, "impossible with one voter left");
  early.Cast(3, kX);
  ExpectStates(early, {kFailed, kFailed, kFailed, kFailed}, "the last voter fails on arrival");
}

void test_a_primary_disagreeing_with_all_secondaries_fails_everyone(void**) {
  // S = 2: primary 3, threshold 4. The secondaries agree with each other.
  Subtransaction two({3, 1, 1}, 4);
  two.Cast(0, kX);
  two.Cast(1, kY);
  assert_false(two.decided());  // 3 + 1 outstanding
  two.Cast(2, kY);
  assert_true(two.decided());
  ExpectStates(two, {kFailed, kFailed, kFailed}, "S=2");

  // S = 3: primary 4, threshold 6: two disagreeing secondaries decide it.
  Subtransaction three({4, 1, 1, 1}, 6);
  three.Cast(0, kX);
  three.Cast(1, kY);
  assert_false(three.decided());
  three.Cast(2, kY);
  assert_true(three.decided());
  ExpectStates(three, {kFailed, kFailed, kFailed, kUndecided}, "S=3");

  // S = 1: primary 2, threshold 2: the primary alone decides.
  Subtransaction one({2, 1}, 2);
  one.Cast(1, kY);
  assert_false(one.decided());
  one.Cast(0, kX);
  ExpectStates(one, {kCommitted, kFailed}, "S=1");
}

void test_cancel_withdraws_weight(void**) {
  // Canceling voters that have not voted: the threshold stays reachable
  // until it is not.
  Subtransaction sub({3, 1, 1}, 4);
  sub.Cast(0, kX);
  assert_true(sub.Cancel(1));
  assert_false(sub.decided());  // 3 + 1 outstanding
  assert_true(sub.Cancel(2));
  assert_true(sub.decided());
  ExpectStates(sub, {kFailed, kCanceled, kCanceled}, "both secondaries canceled");

  // Canceling a voter that voted takes its vote back.
  Subtransaction voted({1, 1, 1}, 2);
  voted.Cast(0, kX);
  assert_true(voted.Cancel(0));
  voted.Cast(1, kX);
  assert_false(voted.decided());  // X has 1 again, not 2
  voted.Cast(2, kX);
  assert_true(voted.decided());
  ExpectStates(voted, {kCanceled, kCommitted, kCommitted}, "canceled vote not counted");

  // A decided voter cannot be canceled; one that has not voted in a decided
  // subtransaction can.
  Subtransaction decided({3, 1, 1}, 4);
  decided.Cast(0, kX);
  decided.Cast(1, kX);
  assert_false(decided.Cancel(0));
  assert_true(decided.Cancel(2));
  assert_false(decided.Cancel(2));
  ExpectStates(decided, {kCommitted, kCommitted, kCanceled}, "after the decision");

  // Voters that start canceled count as nothing.
  Subtransaction propagated({3, 1, 1}, 4, {1, 2});
  ExpectStates(propagated, {kUndecided, kCanceled, kCanceled}, "starting canceled");
  propagated.Cast(0, kX);
  assert_true(propagated.decided());
  ExpectStates(propagated, {kFailed, kCanceled, kCanceled}, "primary alone cannot reach 4");
}

void test_stop_and_cancel_all_keep_decided_voters(void**) {
  Subtransaction sub({1, 1, 1, 1}, 3);
  sub.Cast(0, kX);
  sub.Cast(1, kX);
  sub.Cast(2, kX);
  assert_true(sub.decided());
  sub.Stop();
  ExpectStates(sub, {kCommitted, kCommitted, kCommitted, kStopped}, "stopped after the decision");

  Subtransaction open({1, 1, 1}, 2);
  open.Cast(0, kX);
  open.Stop();
  assert_true(open.decided());
  ExpectStates(open, {kStopped, kStopped, kStopped}, "stopped while open");

  Subtransaction canceled({1, 1, 1}, 2);
  canceled.Cast(0, kX);
  canceled.Cast(1, kY);
  canceled.CancelAll();
  assert_true(canceled.decided());
  ExpectStates(canceled, {kCanceled, kCanceled, kCanceled}, "canceled while open");
  assert_true(canceled.voted(0) && canceled.voted(1) && !canceled.voted(2));
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unanimous_votes_commit_once_the_threshold_is_reached),
      cmocka_unit_test(test_an_outvoted_secondary_fails_and_the_others_commit),
      cmocka_unit_test(test_every_voter_that_voted_fails_when_quorum_becomes_impossible),
      cmocka_unit_test(test_a_primary_disagreeing_with_all_secondaries_fails_everyone),
      cmocka_unit_test(test_cancel_withdraws_weight),
      cmocka_unit_test(test_stop_and_cancel_all_keep_decided_voters),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
