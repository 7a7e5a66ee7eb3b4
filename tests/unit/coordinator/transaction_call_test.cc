// The coordinator's side of reference transactions: the metadata each node
// gets, who is up to date after the call (reference §8), and a
// TransactionCall against the real manager.

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/transaction_call.h"
#include "test_support.h"

using praefect::Cancelled;
using praefect::Status;
using praefect::StatusCode;
using praefect::coordinator::DecideReplicas;
using praefect::coordinator::IsTransactional;
using praefect::coordinator::ReferenceTransactionMetadata;
using praefect::coordinator::Replicas;
using praefect::coordinator::TransactionCall;
using praefect::transactions::Manager;
using praefect::transactions::Outcome;
using praefect::transactions::Phase;
using praefect::transactions::VoteAnswer;
using praefect::transactions::VoterOutcome;
using praefect::transactions::VoterState;

namespace {

const std::string kHashA(20, 'a');
const std::string kHashB(20, 'b');

void test_metadata_is_praefects(void**) {
  // Byte for byte what Praefect v16 sends (json.Marshal of txinfo's struct,
  // backchannel_id omitted, then base64.StdEncoding).
  // {"id":42,"node":"gitaly-2","primary":false}
  expect_that(ReferenceTransactionMetadata(42, "gitaly-2", false) ==
                  "eyJpZCI6NDIsIm5vZGUiOiJnaXRhbHktMiIsInByaW1hcnkiOmZhbHNlfQ==",
              "the compact JSON of id, node and primary, in that order");
  expect_that(ReferenceTransactionMetadata(1, "g", true) == "eyJpZCI6MSwibm9kZSI6ImciLCJwcmltYXJ5Ijp0cnVlfQ==",
              "padded standard base64");
}

void test_transactional_methods(void**) {
  expect_that(IsTransactional("/gitaly.SmartHTTPService/PostReceivePack"), "PostReceivePack to vote");
  expect_that(IsTransactional("/gitaly.SSHService/SSHReceivePack"), "SSHReceivePack to vote");
  expect_that(IsTransactional("/gitaly.RepositoryService/CreateRepository"), "CreateRepository to vote");
  expect_that(!IsTransactional("/gitaly.RepositoryService/RemoveRepository"), "RemoveRepository, answered here, not to");
  expect_that(!IsTransactional("/gitaly.ObjectPoolService/CreateObjectPool"), "CreateObjectPool not to");
  expect_that(!IsTransactional("/gitaly.RepositoryService/OptimizeRepository"), "maintenance not to");
  expect_that(!IsTransactional("/gitaly.RefService/FindAllBranches"), "accessors not to");
}

Outcome Made(size_t subtransactions, std::vector<std::pair<std::string, VoterState>> voters, bool voted = true) {
  Outcome o;
  o.id = 7;
  o.subtransactions = subtransactions;
  for (auto& [name, state] : voters) o.voters.push_back(VoterOutcome{name, state, voted});
  return o;
}

std::string Describe(const Replicas& r) {
  std::string s = r.record ? "record" : "nothing";
  s += " updated:";
  for (const auto& u : r.updated) s += u + ",";
  s += " outdated:";
  for (const auto& [n, why] : r.outdated) s += n + "=" + std::string(why) + ",";
  return s;
}

void test_decisions_of_section_8(void**) {
  const std::vector<std::string> targets = {"g4"};
  const std::vector<std::pair<std::string, Status>> ok2 = {{"g2", Status::Ok()}, {"g3", Status::Ok()}};
  // No subtransaction, primary failed: nothing changed anywhere.
  Replicas r = DecideReplicas(Made(0, {}), "g1", praefect::Internal("x"), ok2, targets);
  expect_that(!r.record, "nothing recorded, got " + Describe(r));
  // One subtransaction the primary never voted in.
  r = DecideReplicas(Made(1, {{"g1", VoterState::kCanceled}, {"g2", VoterState::kStopped}}, false), "g1",
                     Status::Ok(), ok2, targets);
  expect_that(!r.record, "nothing recorded when the primary never voted, got " + Describe(r));
  // Stopped before anyone voted (the primary's pre-receive hook refused):
  // nothing changed, although the primary's call is OK.
  r = DecideReplicas(Made(0, {{"g1", VoterState::kStopped}, {"g2", VoterState::kStopped}}), "g1", Status::Ok(), ok2,
                     targets);
  expect_that(!r.record, "nothing recorded for a transaction stopped before any vote, got " + Describe(r));
  // No votes at all, primary OK: every secondary replicated.
  r = DecideReplicas(Made(0, {}), "g1", Status::Ok(), ok2, targets);
  expect_that(Describe(r) == "record updated: outdated:g4=outdated,g2=no-votes,g3=no-votes,", Describe(r));
  // State unreadable.
  r = DecideReplicas(std::nullopt, "g1", Status::Ok(), ok2, targets);
  expect_that(Describe(r) == "record updated: outdated:g4=outdated,g2=missing-tx-state,g3=missing-tx-state,",
              Describe(r));
  // Primary not committed.
  r = DecideReplicas(Made(2, {{"g1", VoterState::kFailed}, {"g2", VoterState::kCommitted}}), "g1", Status::Ok(), ok2,
                     targets);
  expect_that(Describe(r) ==
                  "record updated: outdated:g4=outdated,g2=primary-not-committed,g3=primary-not-committed,",
              Describe(r));
  // The usual case: one committed, one outvoted, one whose call failed.
  r = DecideReplicas(Made(2, {{"g1", VoterState::kCommitted},
                              {"g2", VoterState::kCommitted},
                              {"g3", VoterState::kFailed},
                              {"g5", VoterState::kCommitted}}),
                     "g1", Status::Ok(),
                     {{"g2", Status::Ok()}, {"g3", Status::Ok()}, {"g5", praefect::Unavailable("gone")}}, targets);
  expect_that(Describe(r) == "record updated:g2, outdated:g4=outdated,g3=node-not-committed,g5=node-error-status,",
              Describe(r));
  // A primary whose call failed after it committed (it died, or hung and
  // was aborted): the secondaries that committed as much as it did hold
  // what it holds, whatever their calls' ends; the others do not.
  Outcome died = Made(3, {{"g1", VoterState::kCanceled}, {"g2", VoterState::kFailed}, {"g3", VoterState::kFailed}});
  died.voters[0].committed_subtransactions = 2;
  died.voters[1].committed_subtransactions = 2;
  died.voters[2].committed_subtransactions = 1;
  r = DecideReplicas(died, "g1", praefect::Unavailable("connection lost"),
                     {{"g2", praefect::Cancelled("cancelled")}, {"g3", Status::Ok()}}, {"g4"});
  expect_that(Describe(r) == "record updated:g2, outdated:g4=outdated,g3=node-not-committed,", Describe(r));
  // ... and when it committed nothing, nothing changed anywhere.
  died.voters[0].committed_subtransactions = 0;
  r = DecideReplicas(died, "g1", praefect::Unavailable("connection lost"), {{"g2", Status::Ok()}}, {"g4"});
  expect_that(!r.record, "nothing recorded when the failed primary committed nothing, got " + Describe(r));
}

void test_call_against_the_manager(void**) {
  Manager manager(nullptr);
  auto call = TransactionCall::Register(&manager, nullptr, "default", 3, "g1", {"g2", "g3"}, {});
  assert_status_ok(call.status());
  auto tx = *call;
  // g3's call fails before it votes: its weight (1) goes; g1 (3) + g2 (1)
  // still reach the threshold (4).
  tx->SecondaryFinished(1, praefect::Unavailable("killed"));
  expect_that(!tx->WaitFor(1), "not to wait for a secondary whose call failed");
  expect_that(tx->WaitFor(0), "to wait for one still in the transaction");
  std::thread g2([&] {
    auto answer = manager.Vote(tx->id(), "g2", kHashA, Phase::kPrepared);
    expect_that(answer.ok() && *answer == VoteAnswer::kCommit, "g2 to commit");
  });
  auto answer = manager.Vote(tx->id(), "g1", kHashA, Phase::kPrepared);
  g2.join();
  expect_that(answer.ok() && *answer == VoteAnswer::kCommit, "the primary to commit");
  tx->SecondaryFinished(0, Status::Ok());
  Replicas r = tx->Finish(Status::Ok(), "corr");
  expect_that(Describe(r) == "record updated:g2, outdated:g3=node-error-status,", Describe(r));
  expect_that(manager.active() == 0, "the transaction to be gone");
  Replicas again = tx->Finish(praefect::Internal("later"), "corr");
  expect_that(Describe(again) == Describe(r), "a second Finish to return the first one's answer");
}

void test_stopped_before_any_vote_records_nothing(void**) {
  // The primary's pre-receive hook refused the push and stopped the
  // transaction before anyone voted; receive-pack still ends OK.
  Manager manager(nullptr);
  auto call = TransactionCall::Register(&manager, nullptr, "default", 3, "g1", {"g2", "g3"}, {});
  assert_status_ok(call.status());
  assert_status_ok(manager.Stop((*call)->id()));
  auto late = manager.Vote((*call)->id(), "g2", kHashA, Phase::kSynchronized);
  expect_that(late.ok() && *late == VoteAnswer::kStop, "a vote after the stop to get STOP");
  (*call)->SecondaryFinished(0, Status::Ok());
  (*call)->SecondaryFinished(1, Status::Ok());
  Replicas r = (*call)->Finish(Status::Ok(), "corr");
  expect_that(!r.record, "nothing recorded, got " + Describe(r));
}

void test_abandoned_call_cancels_its_votes(void**) {
  Manager manager(nullptr);
  uint64_t id = 0;
  std::thread voter;
  {
    auto call = TransactionCall::Register(&manager, nullptr, "default", 3, "g1", {"g2", "g3"}, {});
    assert_status_ok(call.status());
    id = (*call)->id();
    voter = std::thread([&manager, id] {
      auto answer = manager.Vote(id, "g2", kHashB, Phase::kPrepared);
      expect_that(!answer.ok() && answer.status().code() == StatusCode::kCancelled,
                  "the waiting vote to be cancelled when the call goes away");
    });
    while (true) {
      auto snap = manager.Snapshot(id);
      if (snap.ok() && snap->subtransactions > 0) break;
      std::this_thread::yield();
    }
  }
  voter.join();
  expect_that(manager.active() == 0, "the transaction to be gone");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metadata_is_praefects),
      cmocka_unit_test(test_transactional_methods),
      cmocka_unit_test(test_decisions_of_section_8),
      cmocka_unit_test(test_call_against_the_manager),
      cmocka_unit_test(test_stopped_before_any_vote_records_nothing),
      cmocka_unit_test(test_abandoned_call_cancels_its_votes),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
