// gitaly.RefTransaction as praefect serves it: requests and responses in
// Gitaly's wire format (the messages of proto/praefect/transaction.proto),
// votes answered on threads of their own once their subtransaction is
// decided, Praefect's errors, and Shutdown withdrawing waiting votes.
#include "services/ref_transaction.h"

#include <chrono>
#include <future>
#include <string>

#include "praefect/transaction.pb.h"
#include "test_support.h"

using praefect::StatusCode;
using praefect::StatusOr;
using praefect::services::kStopTransaction;
using praefect::services::kVoteTransaction;
using praefect::services::RefTransactionService;
using praefect::transactions::Manager;
using praefect::transactions::PrimaryVotingPlan;
using Clock = std::chrono::steady_clock;

namespace {

const std::string kHashA(20, 'a');
const std::string kHashB(20, 'b');

std::string VoteRequest(uint64_t id, const std::string& node, const std::string& hash) {
  gitaly::VoteTransactionRequest r;
  r.set_transaction_id(id);
  r.set_node(node);
  r.set_reference_updates_hash(hash);
  r.set_phase(gitaly::VoteTransactionRequest::PREPARED_PHASE);
  return r.SerializeAsString();
}

// The state a VoteTransactionResponse carries, or the error's code and message.
std::string Outcome(const StatusOr<std::string>& answer) {
  if (!answer.ok()) return answer.status().ToString();
  gitaly::VoteTransactionResponse r;
  if (!r.ParseFromString(*answer)) return "unparsable response";
  return gitaly::VoteTransactionResponse::TransactionState_Name(r.state());
}

std::future<StatusOr<std::string>> Vote(RefTransactionService& service, uint64_t id, const std::string& node,
                                        const std::string& hash) {
  auto promise = std::make_shared<std::promise<StatusOr<std::string>>>();
  auto future = promise->get_future();
  service.Answer(kVoteTransaction, VoteRequest(id, node, hash), Clock::now() + std::chrono::seconds(10),
                 [promise](StatusOr<std::string> answer) { promise->set_value(std::move(answer)); });
  return future;
}

uint64_t Register(Manager& manager) {
  auto plan = PrimaryVotingPlan("gitaly-1", {"gitaly-2", "gitaly-3"});
  auto id = manager.Register(plan.voters, plan.threshold);
  assert_status_ok(id.status());
  return *id;
}

void VotesAreAnsweredOnceDecided(void**) {
  Manager manager(nullptr);
  RefTransactionService service(&manager);
  const uint64_t id = Register(manager);
  auto primary = Vote(service, id, "gitaly-1", kHashA);
  // The primary alone (3 of 5, threshold 4) waits.
  expect_that(primary.wait_for(std::chrono::milliseconds(100)) == std::future_status::timeout,
              "the primary's vote waits for a secondary");
  auto outvoted = Vote(service, id, "gitaly-3", kHashB);
  auto agreeing = Vote(service, id, "gitaly-2", kHashA);
  expect_that(Outcome(primary.get()) == "COMMIT", "the primary commits");
  expect_that(Outcome(agreeing.get()) == "COMMIT", "the agreeing secondary commits");
  expect_that(Outcome(outvoted.get()) == "ABORT", "the outvoted secondary aborts");
}

void PraefectsErrors(void**) {
  Manager manager(nullptr);
  RefTransactionService service(&manager);
  const uint64_t id = Register(manager);
  const auto soon = Clock::now() + std::chrono::seconds(5);
  auto unknown = service.AnswerNow(kVoteTransaction, VoteRequest(id + 100, "gitaly-1", kHashA), soon);
  expect_that(Outcome(unknown) == "NOT_FOUND: transaction not found: " + std::to_string(id + 100), Outcome(unknown));
  auto short_hash = service.AnswerNow(kVoteTransaction, VoteRequest(id, "gitaly-1", "abc"), soon);
  expect_that(Outcome(short_hash) == "INVALID_ARGUMENT: invalid reference update hash: invalid vote length 3",
              Outcome(short_hash));
  auto stranger = service.AnswerNow(kVoteTransaction, VoteRequest(id, "gitaly-9", kHashA), soon);
  expect_that(Outcome(stranger) == "INTERNAL: invalid node for transaction: \"gitaly-9\"", Outcome(stranger));
  auto garbage = service.AnswerNow(kVoteTransaction, std::string("\xff\xff\xff", 3), soon);
  expect_that(!garbage.ok() && garbage.status().code() == StatusCode::kInvalidArgument, Outcome(garbage));
  auto other = service.AnswerNow("/gitaly.RefTransaction/Frobnicate", "", soon);
  expect_that(!other.ok() && other.status().code() == StatusCode::kUnimplemented, Outcome(other));
}

void StopAnswersTheWaitingVotes(void**) {
  Manager manager(nullptr);
  RefTransactionService service(&manager);
  const uint64_t id = Register(manager);
  auto primary = Vote(service, id, "gitaly-1", kHashA);
  gitaly::StopTransactionRequest stop;
  stop.set_transaction_id(id);
  auto stopped = service.AnswerNow(kStopTransaction, stop.SerializeAsString(), Clock::now() + std::chrono::seconds(5));
  assert_status_ok(stopped.status());
  gitaly::StopTransactionResponse empty;
  expect_that(empty.ParseFromString(*stopped), "a StopTransactionResponse");
  expect_that(Outcome(primary.get()) == "STOP", "the waiting vote answered STOP");
  stop.set_transaction_id(id + 7);
  auto unknown = service.AnswerNow(kStopTransaction, stop.SerializeAsString(), Clock::now() + std::chrono::seconds(5));
  expect_that(!unknown.ok() && unknown.status().code() == StatusCode::kNotFound, Outcome(unknown));
}

void ShutdownWithdrawsWaitingVotes(void**) {
  Manager manager(nullptr);
  RefTransactionService service(&manager);
  const uint64_t id = Register(manager);
  auto primary = Vote(service, id, "gitaly-1", kHashA);
  expect_that(primary.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout, "the vote waits");
  const auto started = Clock::now();
  service.Shutdown();
  expect_that(Clock::now() - started < std::chrono::seconds(2), "Shutdown does not wait for the vote's deadline");
  auto answer = primary.get();
  expect_that(!answer.ok() && answer.status().code() == StatusCode::kCancelled, Outcome(answer));
  auto late = Vote(service, id, "gitaly-2", kHashA).get();
  expect_that(!late.ok() && late.status().code() == StatusCode::kUnavailable, Outcome(late));
}

void ManyVotesAtOnce(void**) {
  Manager manager(nullptr);
  RefTransactionService service(&manager);
  std::vector<std::future<StatusOr<std::string>>> votes;
  for (int t = 0; t < 50; ++t) {
    const uint64_t id = Register(manager);
    for (const char* node : {"gitaly-3", "gitaly-2", "gitaly-1"}) votes.push_back(Vote(service, id, node, kHashA));
  }
  int committed = 0;
  for (auto& v : votes) committed += Outcome(v.get()) == "COMMIT";
  expect_that(committed == 150, "every vote of 50 unanimous transactions committed, got " + std::to_string(committed));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(VotesAreAnsweredOnceDecided),
      cmocka_unit_test(PraefectsErrors),
      cmocka_unit_test(StopAnswersTheWaitingVotes),
      cmocka_unit_test(ShutdownWithdrawsWaitingVotes),
      cmocka_unit_test(ManyVotesAtOnce),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
