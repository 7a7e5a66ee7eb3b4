#include "transactions/transaction.h"

#include <string>
#include <vector>

#include "votes.h"
#include "test_support.h"

using praefect::StatusCode;
using praefect::StatusOr;
using praefect::transactions::Ballot;
using praefect::transactions::Outcome;
using praefect::transactions::Transaction;
using praefect::transactions::VoterState;
using praefect::transactions::VoterStateName;
using praefect::transactions::testing::kCanceled;
using praefect::transactions::testing::kCommitted;
using praefect::transactions::testing::kFailed;
using praefect::transactions::testing::kStopped;
using praefect::transactions::testing::kUndecided;
using praefect::transactions::testing::kX;
using praefect::transactions::testing::kY;
using praefect::transactions::testing::States;

namespace {

// Primary "p" (3) and secondaries "a", "b" (1 each), threshold 4: Praefect's
// plan for two secondaries.
Transaction ThreeVoters() {
  StatusOr<Transaction> tx = Transaction::Create(7, {{"p", 3}, {"a", 1}, {"b", 1}}, 4);
  assert_status_ok(tx.status());
  return std::move(tx).value();
}

Ballot MustCast(Transaction& tx, const std::string& node, const std::string& hash) {
  StatusOr<Ballot> ballot = tx.Cast(node, hash);
  assert_status_ok(ballot.status());
  return *ballot;
}

void ExpectResult(const Transaction& tx, const Ballot& ballot, size_t subtransaction, VoterState want,
                  const std::string& what) {
  expect_that(ballot.subtransaction == subtransaction,
              what + ": subtransaction " + std::to_string(subtransaction) + ", got " +
                  std::to_string(ballot.subtransaction));
  VoterState got = tx.Result(ballot);
  expect_that(got == want, what + ": " + std::string(VoterStateName(want)) + ", got " +
                               std::string(VoterStateName(got)));
}

void ExpectStates(const Outcome& outcome, const std::string& want) {
  expect_that(States(outcome) == want, "states " + want + ", got " + States(outcome));
}

void test_create_validates(void**) {
  StatusOr<Transaction> tx = Transaction::Create(1, {{"p", 1}, {"p", 1}}, 2);
  assert_false(tx.ok());
  assert_int_equal(static_cast<int>(tx.status().code()), static_cast<int>(StatusCode::kInvalidArgument));
}

void test_kth_vote_goes_to_kth_subtransaction(void**) {
  Transaction tx = ThreeVoters();
  assert_int_equal(tx.subtransactions(), 0);
  Ballot p1 = MustCast(tx, "p", kX);
  assert_int_equal(tx.subtransactions(), 1);
  Ballot a1 = MustCast(tx, "a", kX);
  ExpectResult(tx, p1, 0, kCommitted, "p's first vote");
  ExpectResult(tx, a1, 0, kCommitted, "a's first vote");
  // p and a go on; b, late, still votes in the first one.
  Ballot p2 = MustCast(tx, "p", kY);
  assert_int_equal(tx.subtransactions(), 2);
  Ballot b1 = MustCast(tx, "b", kX);
  ExpectResult(tx, b1, 0, kCommitted, "b's first vote, judged on arrival");
  Ballot b2 = MustCast(tx, "b", kY);
  ExpectResult(tx, b2, 1, kCommitted, "b's second vote decides the second subtransaction");
  ExpectResult(tx, p2, 1, kCommitted, "p's second vote");
  Ballot a2 = MustCast(tx, "a", kY);
  ExpectResult(tx, a2, 1, kCommitted, "a's second vote");
  assert_int_equal(tx.subtransactions(), 2);
  // The phase plays no part: whatever it is, a third vote opens a third one.
  Ballot p3 = MustCast(tx, "p", kX);
  ExpectResult(tx, p3, 2, kUndecided, "p's third vote waits");
  assert_int_equal(tx.subtransactions(), 3);
}

void test_a_node_that_failed_gets_that_result_on_its_next_votes(void**) {
  Transaction tx = ThreeVoters();
  MustCast(tx, "p", kX);
  MustCast(tx, "a", kX);
  Ballot b1 = MustCast(tx, "b", kY);
  ExpectResult(tx, b1, 0, kFailed, "b outvoted");
  Ballot b2 = MustCast(tx, "b", kY);
  assert_true(b2.early.has_value());
  ExpectResult(tx, b2, 0, kFailed, "b's next vote");
  assert_int_equal(tx.subtransactions(), 1);  // nothing was created for it
  // The others go on without b: it still counts as a voter to come in the
  // next subtransaction (only canceled voters are carried over, as in
  // Praefect).
  Ballot p2 = MustCast(tx, "p", kX);
  ExpectResult(tx, p2, 1, kUndecided, "p waits for a or b");
  Ballot a2 = MustCast(tx, "a", kX);
  ExpectResult(tx, a2, 1, kCommitted, "a");
  ExpectStates(tx.outcome(), "p=committed a=committed b=undecided");
}

void test_canceled_and_stopped_nodes_get_that_result_on_their_next_votes(void**) {
  Transaction tx = ThreeVoters();
  Ballot a1 = MustCast(tx, "a", kX);
  assert_true(tx.Withdraw(a1));  // a's call ended while it waited
  ExpectResult(tx, a1, 0, kCanceled, "withdrawn");
  Ballot a2 = MustCast(tx, "a", kX);
  ExpectResult(tx, a2, 0, kCanceled, "a's next vote");
  MustCast(tx, "p", kX);
  Ballot b1 = MustCast(tx, "b", kX);
  ExpectResult(tx, b1, 0, kCommitted, "p and b reach 4 without a");
  // a stays canceled in the next subtransaction: p and b must agree there.
  MustCast(tx, "p", kX);
  Ballot b2 = MustCast(tx, "b", kY);
  ExpectResult(tx, b2, 1, kFailed, "b disagrees, a cannot help");
  ExpectStates(tx.outcome(), "p=failed a=canceled b=failed");

  assert_true(tx.Stop());
  Ballot p3 = MustCast(tx, "p", kX);
  ExpectResult(tx, p3, 0, kStopped, "a vote after Stop");
}

void test_withdraw_is_refused_once_decided(void**) {
  Transaction tx = ThreeVoters();
  Ballot p = MustCast(tx, "p", kX);
  Ballot a = MustCast(tx, "a", kX);
  assert_false(tx.Withdraw(p));
  assert_false(tx.Withdraw(a));
  ExpectStates(tx.outcome(), "p=committed a=committed b=undecided");
}

void test_unknown_node_and_double_vote(void**) {
  Transaction tx = ThreeVoters();
  StatusOr<Ballot> unknown = tx.Cast("c", kX);
  assert_false(unknown.ok());
  assert_int_equal(static_cast<int>(unknown.status().code()), static_cast<int>(StatusCode::kInternal));
  assert_string_equal(unknown.status().message().c_str(), "invalid node for transaction: \"c\"");
  assert_int_equal(tx.subtransactions(), 0);  // no empty subtransaction made for it

  MustCast(tx, "p", kX);
  StatusOr<Ballot> again = tx.Cast("p", kX);  // while its first vote waits
  assert_false(again.ok());
  assert_int_equal(static_cast<int>(again.status().code()), static_cast<int>(StatusCode::kInternal));
  assert_string_equal(again.status().message().c_str(), "node already cast a vote: \"p\"");

  praefect::Status st = tx.CancelVoter("c");
  assert_int_equal(static_cast<int>(st.code()), static_cast<int>(StatusCode::kInternal));
  assert_string_equal(st.message().c_str(), "invalid node for transaction: \"c\"");
}

void test_cancel_voter_before_any_vote_creates_a_subtransaction(void**) {
  Transaction tx = ThreeVoters();
  assert_status_ok(tx.CancelVoter("b"));
  assert_int_equal(tx.subtransactions(), 1);
  ExpectStates(tx.outcome(), "p=undecided a=undecided b=canceled");
  Ballot p = MustCast(tx, "p", kX);
  ExpectResult(tx, p, 0, kUndecided, "p goes to that subtransaction");
  Ballot a = MustCast(tx, "a", kX);
  ExpectResult(tx, a, 0, kCommitted, "p and a");
}

void test_cancel_voter_after_it_committed_everything_creates_a_subtransaction(void**) {
  Transaction tx = ThreeVoters();
  MustCast(tx, "p", kX);
  MustCast(tx, "a", kX);
  MustCast(tx, "b", kX);
  assert_status_ok(tx.CancelVoter("b"));
  assert_int_equal(tx.subtransactions(), 2);
  Outcome outcome = tx.outcome();
  ExpectStates(outcome, "p=undecided a=undecided b=canceled");
  assert_false(outcome.Voted("p"));
}

void test_cancel_voter_withdraws_weight_everywhere_it_is_undecided(void**) {
  Transaction tx = ThreeVoters();
  Ballot p = MustCast(tx, "p", kX);
  assert_status_ok(tx.CancelVoter("a"));
  ExpectResult(tx, p, 0, kUndecided, "3 + b's 1 can still reach 4");
  assert_status_ok(tx.CancelVoter("b"));
  ExpectResult(tx, p, 0, kFailed, "nobody left to agree with p");
  assert_int_equal(tx.subtransactions(), 1);
  // Canceling again changes nothing.
  assert_status_ok(tx.CancelVoter("b"));
  assert_int_equal(tx.subtransactions(), 1);
  ExpectStates(tx.outcome(), "p=failed a=canceled b=canceled");
}

void test_a_voter_whose_call_failed_does_not_hold_later_subtransactions(void**) {
  // b is outvoted in the first subtransaction, then its call fails (Gitaly
  // aborts the update on ABORT). In the next subtransaction p and a must
  // agree: b, which will not vote again, no longer counts as one to come.
  Transaction tx = ThreeVoters();
  MustCast(tx, "p", kX);
  MustCast(tx, "a", kX);
  MustCast(tx, "b", kY);
  assert_status_ok(tx.CancelVoter("b"));
  assert_int_equal(tx.subtransactions(), 1);  // b went out: no new subtransaction for it
  Ballot p2 = MustCast(tx, "p", kX);
  assert_status_ok(tx.CancelVoter("a"));
  ExpectResult(tx, p2, 1, kFailed, "a canceled, b gone: 3 < 4");
  ExpectStates(tx.outcome(), "p=failed a=canceled b=canceled");
}

void test_stop_keeps_decided_voters_and_is_idempotent(void**) {
  Transaction tx = ThreeVoters();
  MustCast(tx, "p", kX);
  MustCast(tx, "a", kX);
  Ballot p2 = MustCast(tx, "p", kY);
  assert_true(tx.Stop());
  ExpectResult(tx, p2, 1, kStopped, "p waiting in the second");
  assert_false(tx.Stop());
  Ballot b = MustCast(tx, "b", kX);
  ExpectResult(tx, b, 0, kStopped, "b's vote after Stop");
  assert_int_equal(tx.subtransactions(), 2);
  tx.Cancel();
  ExpectStates(tx.outcome(), "p=stopped a=stopped b=stopped");
}

void test_outcome(void**) {
  // No subtransaction: every voter as the transaction is.
  Transaction open = ThreeVoters();
  ExpectStates(open.outcome(), "p=undecided a=undecided b=undecided");
  open.Cancel();
  Outcome none = open.outcome();
  ExpectStates(none, "p=canceled a=canceled b=canceled");
  assert_int_equal(none.subtransactions, 0);
  assert_string_equal(none.CommittedFigure().c_str(), "0/3");

  Transaction stopped = ThreeVoters();
  assert_true(stopped.Stop());
  ExpectStates(stopped.outcome(), "p=stopped a=stopped b=stopped");

  // The last subtransaction counts.
  Transaction tx = ThreeVoters();
  MustCast(tx, "p", kX);
  MustCast(tx, "a", kX);
  MustCast(tx, "b", kY);
  MustCast(tx, "p", kX);
  MustCast(tx, "a", kX);
  tx.Cancel();
  Outcome outcome = tx.outcome();
  assert_int_equal(outcome.id, 7);
  assert_int_equal(outcome.subtransactions, 2);
  ExpectStates(outcome, "p=committed a=committed b=canceled");
  assert_true(outcome.Committed("p") && outcome.Voted("p"));
  assert_false(outcome.Committed("b") || outcome.Voted("b"));
  assert_false(outcome.Committed("nobody") || outcome.Voted("nobody"));
  assert_null(outcome.Find("nobody"));
  assert_int_equal(outcome.committed(), 2);
  assert_string_equal(outcome.CommittedFigure().c_str(), "2/3");
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_create_validates),
      cmocka_unit_test(test_kth_vote_goes_to_kth_subtransaction),
      cmocka_unit_test(test_a_node_that_failed_gets_that_result_on_its_next_votes),
      cmocka_unit_test(test_canceled_and_stopped_nodes_get_that_result_on_their_next_votes),
      cmocka_unit_test(test_withdraw_is_refused_once_decided),
      cmocka_unit_test(test_unknown_node_and_double_vote),
      cmocka_unit_test(test_cancel_voter_before_any_vote_creates_a_subtransaction),
      cmocka_unit_test(test_cancel_voter_after_it_committed_everything_creates_a_subtransaction),
      cmocka_unit_test(test_cancel_voter_withdraws_weight_everywhere_it_is_undecided),
      cmocka_unit_test(test_a_voter_whose_call_failed_does_not_hold_later_subtransactions),
      cmocka_unit_test(test_stop_keeps_decided_voters_and_is_idempotent),
      cmocka_unit_test(test_outcome),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
