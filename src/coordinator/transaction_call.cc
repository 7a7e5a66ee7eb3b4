#include "coordinator/transaction_call.h"

#include <algorithm>

#include "common/base64.h"
#include "log/log.h"

namespace praefect::coordinator {

bool IsTransactional(std::string_view method) {
  static constexpr std::string_view kMethods[] = {
      "/gitaly.CleanupService/ApplyBfgObjectMapStream",
      "/gitaly.ConflictsService/ResolveConflicts",
      "/gitaly.ObjectPoolService/DisconnectGitAlternates",
      "/gitaly.ObjectPoolService/FetchIntoObjectPool",
      "/gitaly.ObjectPoolService/LinkRepositoryToObjectPool",
      "/gitaly.OperationService/UserApplyPatch",
      "/gitaly.OperationService/UserCherryPick",
      "/gitaly.OperationService/UserCommitFiles",
      "/gitaly.OperationService/UserCreateBranch",
      "/gitaly.OperationService/UserCreateTag",
      "/gitaly.OperationService/UserDeleteBranch",
      "/gitaly.OperationService/UserDeleteTag",
      "/gitaly.OperationService/UserFFBranch",
      "/gitaly.OperationService/UserMergeBranch",
      "/gitaly.OperationService/UserMergeToRef",
      "/gitaly.OperationService/UserRebaseToRef",
      "/gitaly.OperationService/UserRebaseConfirmable",
      "/gitaly.OperationService/UserRevert",
      "/gitaly.OperationService/UserSquash",
      "/gitaly.OperationService/UserUpdateBranch",
      "/gitaly.OperationService/UserUpdateSubmodule",
      "/gitaly.RefService/DeleteRefs",
      "/gitaly.RefService/UpdateReferences",
      "/gitaly.RepositoryService/ApplyGitattributes",
      "/gitaly.RepositoryService/CreateFork",
      "/gitaly.RepositoryService/CreateRepository",
      "/gitaly.RepositoryService/CreateRepositoryFromBundle",
      "/gitaly.RepositoryService/CreateRepositoryFromSnapshot",
      "/gitaly.RepositoryService/CreateRepositoryFromURL",
      "/gitaly.RepositoryService/FetchBundle",
      "/gitaly.RepositoryService/FetchRemote",
      "/gitaly.RepositoryService/FetchSourceBranch",
      "/gitaly.RepositoryService/RestoreCustomHooks",
      "/gitaly.RepositoryService/RestoreRepository",
      "/gitaly.RepositoryService/SetCustomHooks",
      "/gitaly.RepositoryService/SetFullPath",
      "/gitaly.RepositoryService/WriteRef",
      "/gitaly.SSHService/SSHReceivePack",
      "/gitaly.SmartHTTPService/PostReceivePack",
      "/gitaly.HookService/ProcReceiveHook",
  };
  return std::find(std::begin(kMethods), std::end(kMethods), method) != std::end(kMethods);
}

std::string ReferenceTransactionMetadata(uint64_t id, std::string_view node, bool primary) {
  // Storage names are plain (config validation); escape anyway, so the JSON
  // stays JSON whatever the name.
  std::string json = "{\"id\":" + std::to_string(id) + ",\"node\":\"";
  for (char c : node) {
    if (c == '"' || c == '\\') json += '\\';
    json += c;
  }
  json += "\",\"primary\":";
  json += primary ? "true}" : "false}";
  return Base64Encode(json);
}

Replicas DecideReplicas(const std::optional<transactions::Outcome>& outcome, std::string_view primary,
                        const Status& primary_status, const std::vector<std::pair<std::string, Status>>& secondaries,
                        const std::vector<std::string>& targets) {
  Replicas out;
  const size_t subtransactions = outcome ? outcome->subtransactions : 0;
  if (subtransactions == 0 && !primary_status.ok()) return out;
  if (subtransactions == 1 && !outcome->Voted(primary)) return out;
  // A departure from Praefect: a transaction stopped before the primary
  // committed anything (its pre-receive hook refused the push, perhaps
  // before any node voted) changed nothing anywhere. Praefect's rules
  // would take the primary's OK (receive-pack reports the refusal in band)
  // with no subtransaction as "no votes" and replicate to every secondary.
  if (outcome) {
    const transactions::VoterOutcome* p = outcome->Find(primary);
    if (p != nullptr && p->state == transactions::VoterState::kStopped && p->committed_subtransactions == 0)
      return out;
  }
  out.record = true;
  for (const std::string& target : targets) out.outdated.emplace_back(target, "outdated");
  if (!primary_status.ok() && outcome) {
    // A departure from Praefect, which marks every secondary outdated when
    // the primary's call failed after voting (its status differs from
    // theirs), so that a primary that died or hung just after committing is
    // the only replica at the latest generation and the repository waits
    // for it. A node changes its references only once a subtransaction it
    // voted in committed, and no subtransaction commits without the
    // primary; so a secondary that committed every subtransaction the
    // primary committed holds what the primary holds. With none committed,
    // nothing changed anywhere.
    const transactions::VoterOutcome* p = outcome->Find(primary);
    const size_t committed = p != nullptr ? p->committed_subtransactions : 0;
    if (committed == 0) return Replicas{};
    for (const auto& [name, status] : secondaries) {
      const transactions::VoterOutcome* s = outcome->Find(name);
      if (s != nullptr && s->committed_subtransactions >= committed) {
        out.updated.push_back(name);
      } else {
        out.outdated.emplace_back(name, "node-not-committed");
      }
    }
    return out;
  }
  auto all = [&](std::string_view reason) {
    for (const auto& [name, status] : secondaries) out.outdated.emplace_back(name, reason);
  };
  if (outcome && subtransactions == 0) {
    all("no-votes");
  } else if (!outcome) {
    all("missing-tx-state");
  } else if (!outcome->Committed(primary)) {
    all("primary-not-committed");
  } else {
    for (const auto& [name, status] : secondaries) {
      if (status.code() != primary_status.code() || status.message() != primary_status.message()) {
        out.outdated.emplace_back(name, "node-error-status");
      } else if (!outcome->Committed(name)) {
        out.outdated.emplace_back(name, "node-not-committed");
      } else {
        out.updated.push_back(name);
      }
    }
  }
  return out;
}

StatusOr<std::shared_ptr<TransactionCall>> TransactionCall::Register(
    transactions::Manager* manager, metrics::Metrics* metrics, std::string virtual_storage,
    size_t nodes_in_virtual_storage, std::string primary, std::vector<std::string> secondaries,
    std::vector<std::string> targets) {
  transactions::VotingPlan plan = transactions::PrimaryVotingPlan(primary, secondaries);
  const size_t voters = plan.voters.size();
  auto id = manager->Register(std::move(plan.voters), plan.threshold);
  if (!id.ok())
    return Internal("cannot register the reference transaction: " + id.status().message() +
                    " (a bug: report it with praefect's log)");
  if (metrics != nullptr)
    metrics->VotersPerTransaction(virtual_storage, nodes_in_virtual_storage).Observe(static_cast<double>(voters));
  return std::shared_ptr<TransactionCall>(new TransactionCall(manager, metrics, *id, std::move(primary),
                                                              std::move(secondaries), std::move(targets)));
}

TransactionCall::TransactionCall(transactions::Manager* manager, metrics::Metrics* metrics, uint64_t id,
                                 std::string primary, std::vector<std::string> secondaries,
                                 std::vector<std::string> targets)
    : manager_(manager),
      metrics_(metrics),
      id_(id),
      primary_(std::move(primary)),
      secondaries_(std::move(secondaries)),
      targets_(std::move(targets)),
      statuses_(secondaries_.size()) {}

TransactionCall::~TransactionCall() {
  std::lock_guard lock(mu_);
  if (!finished_) (void)manager_->Finish(id_);  // the votes still waiting get CANCELLED
}

void TransactionCall::SecondaryFinished(size_t index, const Status& status) {
  {
    std::lock_guard lock(mu_);
    if (index >= statuses_.size() || statuses_[index]) return;
    statuses_[index] = status;
  }
  // Its weight no longer counts: the others learn at once whether quorum
  // is still possible.
  if (!status.ok()) (void)manager_->CancelVoter(id_, secondaries_[index]);
}

void TransactionCall::PrimaryFinished(const Status& status) {
  // Its weight no longer counts: secondaries still waiting for its vote get
  // ABORT at once instead of waiting for a vote that will not come.
  if (!status.ok()) (void)manager_->CancelVoter(id_, primary_);
}

bool TransactionCall::WaitFor(size_t index) const {
  if (index >= secondaries_.size()) return false;
  auto snapshot = manager_->Snapshot(id_);
  if (!snapshot.ok()) return false;
  const transactions::VoterOutcome* voter = snapshot->Find(secondaries_[index]);
  return voter != nullptr && voter->state != transactions::VoterState::kFailed &&
         voter->state != transactions::VoterState::kCanceled;
}

Replicas TransactionCall::Finish(const Status& primary_status, std::string_view correlation_id) {
  std::lock_guard lock(mu_);
  if (finished_) return *finished_;
  auto outcome = manager_->Finish(id_);
  std::vector<std::pair<std::string, Status>> secondaries;
  for (size_t i = 0; i < secondaries_.size(); ++i)
    secondaries.emplace_back(secondaries_[i],
                             statuses_[i].value_or(Cancelled("the node's call had not ended")));
  std::optional<transactions::Outcome> state;
  if (outcome.ok()) state = std::move(*outcome);
  finished_ = DecideReplicas(state, primary_, primary_status, secondaries, targets_);
  if (metrics_ != nullptr && finished_->record) {
    for (size_t i = 0; i < finished_->updated.size(); ++i) metrics_->TxReplications("updated").Increment();
    for (const auto& [name, reason] : finished_->outdated) metrics_->TxReplications(reason).Increment();
  }
  log::Fields fields = {{"transaction.id", static_cast<unsigned long>(id_)},
                        {"transaction.committed", state ? state->CommittedFigure() : "unknown"},
                        {"transaction.subtransactions", static_cast<unsigned long>(state ? state->subtransactions : 0)},
                        {"correlation_id", std::string(correlation_id)}};
  std::string outdated;
  for (const auto& [name, reason] : finished_->outdated) {
    if (!outdated.empty()) outdated += ",";
    outdated += name + ":" + std::string(reason);
  }
  if (!outdated.empty()) fields.emplace_back("replication.outdated", outdated);
  log::Info("transaction completed", fields);
  return *finished_;
}

}  // namespace praefect::coordinator
