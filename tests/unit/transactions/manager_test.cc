#include "transactions/manager.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iterator>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "metrics/metrics.h"
#include "metrics/scrape.h"
#include "votes.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::StatusOr;
using praefect::metrics::Metrics;
using praefect::metrics::testing::HasLine;
using praefect::transactions::Manager;
using praefect::transactions::Outcome;
using praefect::transactions::Phase;
using praefect::transactions::PrimaryVotingPlan;
using praefect::transactions::VoteAnswer;
using praefect::transactions::VotingPlan;
using praefect::transactions::testing::kW;
using praefect::transactions::testing::kX;
using praefect::transactions::testing::kY;
using praefect::transactions::testing::kZ;
using praefect::transactions::testing::States;
using Clock = std::chrono::steady_clock;

namespace {

// "p" the primary, "a" and "b" secondaries: weights 3, 1, 1, threshold 4.
uint64_t RegisterThree(Manager& manager) {
  VotingPlan plan = PrimaryVotingPlan("p", {"a", "b"});
  StatusOr<uint64_t> id = manager.Register(plan.voters, plan.threshold);
  assert_status_ok(id.status());
  return *id;
}

std::string AnswerName(const StatusOr<VoteAnswer>& answer) {
  if (!answer.ok()) return answer.status().ToString();
  switch (*answer) {
    case VoteAnswer::kCommit:
      return "COMMIT";
    case VoteAnswer::kAbort:
      return "ABORT";
    case VoteAnswer::kStop:
      return "STOP";
  }
  return "?";
}

void ExpectAnswer(const StatusOr<VoteAnswer>& answer, const std::string& want, const std::string& what) {
  expect_that(AnswerName(answer) == want, what + ": " + want + ", got " + AnswerName(answer));
}

// A vote on its own thread: Vote blocks until its subtransaction decides.
std::future<StatusOr<VoteAnswer>> VoteAsync(Manager& manager, uint64_t id, std::string node, std::string hash,
                                            Clock::time_point deadline = Clock::time_point::max(),
                                            std::stop_token stop = {}) {
  return std::async(std::launch::async, [&manager, id, node, hash, deadline, stop] {
    return manager.Vote(id, node, hash, Phase::kPrepared, deadline, stop);
  });
}

// The result of a vote on its own thread. A vote that never returns is a
// bug: the test ends at once saying so, rather than at ctest's timeout (the
// waiting thread could not be joined).
template <typename T>
T Get(std::future<T>& future) {
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    fprintf(stderr, "a vote still waits after 10 s: it should have been answered\n");
    std::abort();
  }
  return future.get();
}

// Waits (polling, at most 10 s) until `node` has cast a vote in the last
// subtransaction of `id`: the vote waits on its thread.
void AwaitVoted(const Manager& manager, uint64_t id, const std::string& node, size_t subtransactions = 1) {
  const auto until = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < until) {
    StatusOr<Outcome> snapshot = manager.Snapshot(id);
    assert_status_ok(snapshot.status());
    if (snapshot->subtransactions == subtransactions && snapshot->Voted(node)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  fail_msg("%s did not vote in subtransaction %zu of transaction %llu within 10 s", node.c_str(), subtransactions,
           static_cast<unsigned long long>(id));
}

Outcome MustFinish(Manager& manager, uint64_t id, const std::string& want_states) {
  StatusOr<Outcome> outcome = manager.Finish(id);
  assert_status_ok(outcome.status());
  expect_that(States(*outcome) == want_states, "states " + want_states + ", got " + States(*outcome));
  return std::move(outcome).value();
}

void ExpectError(const Status& st, StatusCode code, const std::string& message) {
  expect_that(st.code() == code && st.message() == message,
              std::string(praefect::StatusCodeName(code)) + ": " + message + ", got " + st.ToString());
}

// The voters of RegisterThree vote at once, each on its own thread; their
// answers, as "COMMIT COMMIT ABORT" (p's, a's, b's).
std::string VoteTogether(Manager& manager, uint64_t id, const std::string& p, const std::string& a,
                         const std::string& b) {
  auto vp = VoteAsync(manager, id, "p", p);
  auto va = VoteAsync(manager, id, "a", a);
  auto vb = VoteAsync(manager, id, "b", b);
  return AnswerName(Get(vp)) + " " + AnswerName(Get(va)) + " " + AnswerName(Get(vb));
}

void ExpectText(const std::string& got, const std::string& want, const std::string& what) {
  expect_that(got == want, what + ": " + want + ", got " + got);
}

void ExpectLine(const std::string& text, const std::string& line) {
  expect_that(HasLine(text, line), "line \"" + line + "\" in:\n" + text);
}

void test_unanimous_commit(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  ExpectText(VoteTogether(manager, id, kX, kX, kX), "COMMIT COMMIT COMMIT", "answers");
  Outcome outcome = MustFinish(manager, id, "p=committed a=committed b=committed");
  assert_int_equal(outcome.subtransactions, 1);
  assert_true(outcome.Voted("p"));
  assert_string_equal(outcome.CommittedFigure().c_str(), "3/3");
  assert_int_equal(manager.active(), 0);
}

void test_outvoted_secondary_fails_others_commit(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  auto b = VoteAsync(manager, id, "b", kY);
  AwaitVoted(manager, id, "b");
  auto p = VoteAsync(manager, id, "p", kX);
  auto a = VoteAsync(manager, id, "a", kX);
  ExpectAnswer(Get(p), "COMMIT", "p");
  ExpectAnswer(Get(a), "COMMIT", "a");
  ExpectAnswer(Get(b), "ABORT", "b, outvoted");
  Outcome outcome = MustFinish(manager, id, "p=committed a=committed b=failed");
  assert_string_equal(outcome.CommittedFigure().c_str(), "2/3");
}

void test_quorum_impossible_aborts_everyone_who_voted(void**) {
  // Five voters of weight 1, threshold 3: once four different hashes are in,
  // the leader (1) and the one voter left cannot reach 3.
  Manager manager(nullptr);
  StatusOr<uint64_t> id = manager.Register({{"v1", 1}, {"v2", 1}, {"v3", 1}, {"v4", 1}, {"v5", 1}}, 3);
  assert_status_ok(id.status());
  auto v1 = VoteAsync(manager, *id, "v1", kX);
  auto v2 = VoteAsync(manager, *id, "v2", kY);
  auto v3 = VoteAsync(manager, *id, "v3", kZ);
  AwaitVoted(manager, *id, "v1");
  AwaitVoted(manager, *id, "v2");
  AwaitVoted(manager, *id, "v3");
  // Three different hashes and two voters to come: still possible.
  assert_true(v1.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
  auto v4 = VoteAsync(manager, *id, "v4", kW);
  ExpectAnswer(Get(v1), "ABORT", "v1");
  ExpectAnswer(Get(v2), "ABORT", "v2");
  ExpectAnswer(Get(v3), "ABORT", "v3");
  ExpectAnswer(Get(v4), "ABORT", "v4");
  // The last one is judged when it arrives.
  ExpectAnswer(manager.Vote(*id, "v5", kX, Phase::kPrepared), "ABORT", "v5");
  MustFinish(manager, *id, "v1=failed v2=failed v3=failed v4=failed v5=failed");
}

void test_primary_disagreeing_with_all_secondaries(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  ExpectText(VoteTogether(manager, id, kX, kY, kY), "ABORT ABORT ABORT", "answers");
  Outcome outcome = MustFinish(manager, id, "p=failed a=failed b=failed");
  assert_false(outcome.Committed("p"));
  assert_true(outcome.Voted("p"));
}

void test_subtransactions(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  // Three rounds; b disagrees in the second.
  const std::string p_hashes[] = {kX, kY, kZ};
  const std::string b_hashes[] = {kX, kX, kZ};
  for (int round = 0; round < 3; ++round) {
    // b: committed the first; outvoted in the second; in the third, its vote
    // is answered by its second subtransaction's result.
    ExpectText(VoteTogether(manager, id, p_hashes[round], p_hashes[round], b_hashes[round]),
               round == 0 ? "COMMIT COMMIT COMMIT" : "COMMIT COMMIT ABORT", "round " + std::to_string(round + 1));
  }
  Outcome outcome = MustFinish(manager, id, "p=committed a=committed b=canceled");
  assert_int_equal(outcome.subtransactions, 3);
  assert_false(outcome.Voted("b"));
}

void test_stop(void**) {
  Manager manager(nullptr);
  // First subtransaction decided for p and a; b has not voted. p waits in
  // the second.
  uint64_t id = RegisterThree(manager);
  auto p1 = VoteAsync(manager, id, "p", kX);
  auto a1 = VoteAsync(manager, id, "a", kX);
  ExpectAnswer(Get(p1), "COMMIT", "p");
  ExpectAnswer(Get(a1), "COMMIT", "a");
  auto p2 = VoteAsync(manager, id, "p", kY);
  AwaitVoted(manager, id, "p", 2);
  assert_status_ok(manager.Stop(id));
  ExpectAnswer(Get(p2), "STOP", "p waiting");
  ExpectAnswer(manager.Vote(id, "b", kX, Phase::kPrepared), "STOP", "b after Stop");
  ExpectAnswer(manager.Vote(id, "a", kY, Phase::kCommitted), "STOP", "a after Stop");
  // Again: OK, nothing changes.
  assert_status_ok(manager.Stop(id));
  StatusOr<Outcome> snapshot = manager.Snapshot(id);
  assert_status_ok(snapshot.status());
  assert_int_equal(snapshot->subtransactions, 2);
  MustFinish(manager, id, "p=stopped a=stopped b=stopped");

  // Decided voters keep their results.
  uint64_t decided = RegisterThree(manager);
  auto p = VoteAsync(manager, decided, "p", kX);
  auto a = VoteAsync(manager, decided, "a", kX);
  ExpectAnswer(Get(p), "COMMIT", "p");
  ExpectAnswer(Get(a), "COMMIT", "a");
  assert_status_ok(manager.Stop(decided));
  MustFinish(manager, decided, "p=committed a=committed b=stopped");

  ExpectError(manager.Stop(decided), StatusCode::kNotFound,
              "transaction not found: " + std::to_string(decided));
}

void test_cancel_voter_makes_quorum_impossible_and_releases_waiters(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  auto p = VoteAsync(manager, id, "p", kX);
  AwaitVoted(manager, id, "p");
  assert_status_ok(manager.CancelVoter(id, "a"));
  // b can still agree: p keeps waiting.
  assert_true(p.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
  assert_status_ok(manager.CancelVoter(id, "b"));
  ExpectAnswer(Get(p), "ABORT", "p, alone");
  MustFinish(manager, id, "p=failed a=canceled b=canceled");

  // A waiting voter that is canceled gets CANCELLED.
  uint64_t waiting = RegisterThree(manager);
  auto a = VoteAsync(manager, waiting, "a", kX);
  AwaitVoted(manager, waiting, "a");
  assert_status_ok(manager.CancelVoter(waiting, "a"));
  ExpectAnswer(Get(a), "CANCELLED: transaction has been canceled", "a canceled while waiting");
  ExpectAnswer(manager.Vote(waiting, "a", kX, Phase::kCommitted), "CANCELLED: transaction has been canceled",
               "a's next vote");
  MustFinish(manager, waiting, "p=canceled a=canceled b=canceled");

  ExpectError(manager.CancelVoter(waiting, "a"), StatusCode::kNotFound,
              "transaction not found: " + std::to_string(waiting));
  uint64_t other = RegisterThree(manager);
  ExpectError(manager.CancelVoter(other, "c"), StatusCode::kInternal, "invalid node for transaction: \"c\"");
  (void)manager.Finish(other);
}

void test_a_vote_whose_deadline_passes_cancels_that_voter(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  // The deadline is passed already: the vote is cast, then withdrawn.
  ExpectAnswer(manager.Vote(id, "p", kX, Phase::kPrepared, Clock::now()),
               "DEADLINE_EXCEEDED: context deadline exceeded", "p");
  // Its weight no longer counts: a and b cannot reach 4.
  ExpectAnswer(manager.Vote(id, "a", kX, Phase::kPrepared), "ABORT", "a");
  ExpectAnswer(manager.Vote(id, "b", kX, Phase::kPrepared), "ABORT", "b");
  MustFinish(manager, id, "p=canceled a=failed b=failed");

  // A deadline that passes while the vote waits.
  uint64_t waiting = RegisterThree(manager);
  auto p = VoteAsync(manager, waiting, "p", kX, Clock::now() + std::chrono::milliseconds(50));
  ExpectAnswer(Get(p), "DEADLINE_EXCEEDED: context deadline exceeded", "p waiting");
  ExpectAnswer(manager.Vote(waiting, "p", kX, Phase::kCommitted), "CANCELLED: transaction has been canceled",
               "p's next vote");
  MustFinish(manager, waiting, "p=canceled a=canceled b=canceled");

  // A vote decided by its own arrival keeps its answer, deadline or not.
  uint64_t single = *manager.Register({{"p", 1}}, 1);
  ExpectAnswer(manager.Vote(single, "p", kX, Phase::kPrepared, Clock::now()), "COMMIT", "single voter");
  (void)manager.Finish(single);
}

void test_a_vote_whose_call_is_canceled_cancels_that_voter(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  std::stop_source stop;
  auto a = VoteAsync(manager, id, "a", kX, Clock::time_point::max(), stop.get_token());
  AwaitVoted(manager, id, "a");
  stop.request_stop();
  ExpectAnswer(Get(a), "CANCELLED: context canceled", "a");
  // p and b can still decide without a.
  auto p = VoteAsync(manager, id, "p", kX);
  auto b = VoteAsync(manager, id, "b", kX);
  ExpectAnswer(Get(p), "COMMIT", "p");
  ExpectAnswer(Get(b), "COMMIT", "b");
  MustFinish(manager, id, "p=committed a=canceled b=committed");

  // Requested before the call.
  uint64_t early = RegisterThree(manager);
  std::stop_source before;
  before.request_stop();
  ExpectAnswer(manager.Vote(early, "p", kX, Phase::kPrepared, Clock::time_point::max(), before.get_token()),
               "CANCELLED: context canceled", "p");
  (void)manager.Finish(early);
}

void test_finish_releases_waiters_and_removes_the_transaction(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  auto p = VoteAsync(manager, id, "p", kX);
  AwaitVoted(manager, id, "p");
  Outcome outcome = MustFinish(manager, id, "p=canceled a=canceled b=canceled");
  ExpectAnswer(Get(p), "CANCELLED: transaction has been canceled", "p waiting");
  assert_int_equal(outcome.subtransactions, 1);
  assert_true(outcome.Voted("p"));
  assert_false(outcome.Committed("p"));
  assert_string_equal(outcome.CommittedFigure().c_str(), "0/3");
  assert_int_equal(manager.active(), 0);
  ExpectAnswer(manager.Vote(id, "p", kX, Phase::kPrepared), "NOT_FOUND: transaction not found: " + std::to_string(id),
               "after Finish");
  ExpectError(manager.Finish(id).status(), StatusCode::kNotFound, "transaction not found: " + std::to_string(id));

  // Nobody voted.
  uint64_t idle = RegisterThree(manager);
  Outcome none = MustFinish(manager, idle, "p=canceled a=canceled b=canceled");
  assert_int_equal(none.subtransactions, 0);
  assert_false(none.Voted("p"));
}

void test_errors(void**) {
  Manager manager(nullptr);
  uint64_t id = RegisterThree(manager);
  ExpectAnswer(manager.Vote(id + 1000, "p", kX, Phase::kPrepared),
               "NOT_FOUND: transaction not found: " + std::to_string(id + 1000), "unknown id");
  ExpectAnswer(manager.Vote(id, "p", std::string(19, 'x'), Phase::kPrepared),
               "INVALID_ARGUMENT: invalid reference update hash: invalid vote length 19", "19 bytes");
  ExpectAnswer(manager.Vote(id, "p", "", Phase::kPrepared),
               "INVALID_ARGUMENT: invalid reference update hash: invalid vote length 0", "no hash");
  ExpectAnswer(manager.Vote(id, "p", std::string(32, 'x'), Phase::kPrepared),
               "INVALID_ARGUMENT: invalid reference update hash: invalid vote length 32", "a SHA-256");
  ExpectAnswer(manager.Vote(id, "gitaly-\n", kX, Phase::kPrepared),
               "INTERNAL: invalid node for transaction: \"gitaly-\\n\"", "unknown node");
  ExpectError(manager.Stop(id + 1000), StatusCode::kNotFound, "transaction not found: " + std::to_string(id + 1000));
  ExpectError(manager.Snapshot(id + 1000).status(), StatusCode::kNotFound,
              "transaction not found: " + std::to_string(id + 1000));
  // None of these touched the transaction.
  MustFinish(manager, id, "p=canceled a=canceled b=canceled");

  ExpectError(manager.Register({}, 1).status(), StatusCode::kInvalidArgument, "transaction requires at least one node");
  assert_int_equal(manager.active(), 0);
}

void test_ids_are_process_wide_and_increasing(void**) {
  Manager first(nullptr);
  Manager second(nullptr);
  uint64_t a = RegisterThree(first);
  uint64_t b = RegisterThree(second);
  uint64_t c = RegisterThree(first);
  assert_true(a >= 1 && a < b && b < c);
  // Each manager knows only its own.
  ExpectError(second.Finish(a).status(), StatusCode::kNotFound, "transaction not found: " + std::to_string(a));
  (void)first.Finish(a);
  (void)second.Finish(b);
  (void)first.Finish(c);
}

void test_metrics(void**) {
  Metrics metrics(praefect::metrics::Options{});
  Manager manager(&metrics);
  std::string text = metrics.Render();
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"registered\"} 0");

  uint64_t id = RegisterThree(manager);
  ExpectText(VoteTogether(manager, id, kX, kX, kY), "COMMIT COMMIT ABORT", "answers");
  (void)manager.Vote(id, "c", kX, Phase::kPrepared);              // invalid
  (void)manager.Vote(id, "p", std::string(3, 'x'), Phase::kPrepared);  // not even started
  assert_status_ok(manager.Stop(id));
  assert_status_ok(manager.Stop(id));  // counted once
  ExpectAnswer(manager.Vote(id, "a", kX, Phase::kCommitted), "STOP", "a");
  (void)manager.Finish(id);

  uint64_t canceled = RegisterThree(manager);
  assert_status_ok(manager.CancelVoter(canceled, "b"));
  ExpectAnswer(manager.Vote(canceled, "b", kX, Phase::kPrepared), "CANCELLED: transaction has been canceled", "b");
  (void)manager.Finish(canceled);

  text = metrics.Render();
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"registered\"} 6");
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"started\"} 6");
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"committed\"} 2");
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"failed\"} 1");
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"invalid\"} 1");
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"stopped\"} 2");
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"canceled\"} 1");
  ExpectLine(text, "gitaly_praefect_transactions_delay_seconds_count{action=\"vote\"} 6");
  ExpectLine(text, "gitaly_praefect_subtransactions_per_transaction_total_count 2");
  ExpectLine(text, "gitaly_praefect_subtransactions_per_transaction_total_bucket{le=\"0\"} 0");
  ExpectLine(text, "gitaly_praefect_subtransactions_per_transaction_total_bucket{le=\"1\"} 2");
  ExpectLine(text, "gitaly_praefect_subtransactions_per_transaction_total_bucket{le=\"32\"} 2");
  ExpectLine(text, "# TYPE gitaly_praefect_transactions_delay_seconds histogram");
}

// What one voter does in the concurrency test: vote `first` then, after a
// COMMIT, `second` (as Gitaly votes the prepared and committed states); or,
// with `fails`, cancel itself before voting (its RPC failed).
struct Part {
  std::string first;
  std::string second;
  bool fails = false;
};

// A kind of transaction of the concurrency test and what it must come to.
struct Scenario {
  Part p, a, b;
  const char* answers;  // p's, a's, b's, each comma-separated
  const char* states;
};

const Scenario kScenarios[] = {
    {{kX, kY}, {kX, kY}, {kX, kY}, "COMMIT,COMMIT COMMIT,COMMIT COMMIT,COMMIT",
     "p=committed a=committed b=committed"},
    // b is outvoted, then stays out of the second subtransaction.
    {{kX, kY}, {kX, kY}, {kZ, kY}, "COMMIT,COMMIT COMMIT,COMMIT ABORT", "p=committed a=committed b=canceled"},
    {{kX, kY}, {kY, kY}, {kZ, kY}, "ABORT ABORT ABORT", "p=failed a=failed b=failed"},
    // b is canceled before, during or after the first subtransaction: p and
    // a agree either way.
    {{kX, kY}, {kX, kY}, {"", "", true}, "COMMIT,COMMIT COMMIT,COMMIT canceled", "p=committed a=committed b=canceled"},
};

std::future<std::string> Play(Manager& manager, uint64_t id, std::string node, Part part) {
  return std::async(std::launch::async, [&manager, id, node, part] {
    if (part.fails) {
      Status st = manager.CancelVoter(id, node);
      return st.ok() ? std::string("canceled") : st.ToString();
    }
    std::string answers;
    for (const std::string& hash : {part.first, part.second}) {
      StatusOr<VoteAnswer> answer = manager.Vote(id, node, hash, Phase::kPrepared);
      answers += (answers.empty() ? "" : ",") + AnswerName(answer);
      if (!answer.ok() || *answer != VoteAnswer::kCommit) break;
    }
    return answers;
  });
}

// Many transactions at once, each voter on its own thread: no deadlock, and
// each outcome is the one its votes call for.
void test_concurrent_transactions(void**) {
  Metrics metrics(praefect::metrics::Options{});
  Manager manager(&metrics);
  constexpr size_t kKinds = std::size(kScenarios);
  constexpr size_t kRounds = 10;
  constexpr size_t kParallel = 20;  // transactions at once: 60 threads
  for (size_t round = 0; round < kRounds; ++round) {
    struct Run {
      const Scenario* scenario;
      uint64_t id;
      std::future<std::string> p, a, b;
    };
    std::vector<Run> runs;
    for (size_t i = 0; i < kParallel; ++i) {
      const Scenario& scenario = kScenarios[(round * kParallel + i) % kKinds];
      uint64_t id = RegisterThree(manager);
      runs.push_back(Run{&scenario, id, Play(manager, id, "p", scenario.p), Play(manager, id, "a", scenario.a),
                         Play(manager, id, "b", scenario.b)});
    }
    for (Run& run : runs) {
      std::string answers = Get(run.p) + " " + Get(run.a) + " " + Get(run.b);
      StatusOr<Outcome> outcome = manager.Finish(run.id);
      assert_status_ok(outcome.status());
      const std::string what = "transaction " + std::to_string(run.id);
      expect_that(answers == run.scenario->answers, what + ": answers " + run.scenario->answers + ", got " + answers);
      expect_that(States(*outcome) == run.scenario->states,
                  what + ": states " + run.scenario->states + ", got " + States(*outcome));
    }
  }
  assert_int_equal(manager.active(), 0);
  std::string text = metrics.Render();
  const size_t n = kRounds * kParallel / kKinds;  // transactions of each kind
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"registered\"} " + std::to_string(3 * kRounds * kParallel));
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"committed\"} " + std::to_string(6 * n + 4 * n + 4 * n));
  ExpectLine(text, "gitaly_praefect_transactions_total{action=\"failed\"} " + std::to_string(n + 3 * n));
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unanimous_commit),
      cmocka_unit_test(test_outvoted_secondary_fails_others_commit),
      cmocka_unit_test(test_quorum_impossible_aborts_everyone_who_voted),
      cmocka_unit_test(test_primary_disagreeing_with_all_secondaries),
      cmocka_unit_test(test_subtransactions),
      cmocka_unit_test(test_stop),
      cmocka_unit_test(test_cancel_voter_makes_quorum_impossible_and_releases_waiters),
      cmocka_unit_test(test_a_vote_whose_deadline_passes_cancels_that_voter),
      cmocka_unit_test(test_a_vote_whose_call_is_canceled_cancels_that_voter),
      cmocka_unit_test(test_finish_releases_waiters_and_removes_the_transaction),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_ids_are_process_wide_and_increasing),
      cmocka_unit_test(test_metrics),
      cmocka_unit_test(test_concurrent_transactions),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
