#include "transactions/manager.h"

#include <atomic>
#include <string>

namespace praefect::transactions {

namespace {

// Process-wide, as Praefect's: one praefect never hands out an id twice.
std::atomic<uint64_t> next_id{1};

// The actions of gitaly_praefect_transactions_total.
constexpr std::string_view kActions[] = {"registered", "started", "committed", "failed",
                                         "canceled",   "stopped", "invalid"};

Status NotFoundError(uint64_t id) { return NotFound("transaction not found: " + std::to_string(id)); }

}  // namespace

Manager::Manager(metrics::Metrics* metrics) {
  if (metrics == nullptr) return;
  // Made now, so that each series exists (at 0) from the start.
  for (std::string_view action : kActions) actions_.emplace_back(action, metrics->TransactionActions(action));
  delay_ = metrics->TransactionDelay("vote");
  subtransactions_ = metrics->SubtransactionsPerTransaction();
}

Manager::~Manager() = default;

void Manager::Count(std::string_view action, double by) {
  for (auto& [name, counter] : actions_) {
    if (name == action) counter.Increment(by);
  }
}

std::shared_ptr<Manager::Entry> Manager::Find(uint64_t id) const {
  std::lock_guard lock(mu_);
  auto it = transactions_.find(id);
  return it == transactions_.end() ? nullptr : it->second;
}

size_t Manager::active() const {
  std::lock_guard lock(mu_);
  return transactions_.size();
}

StatusOr<uint64_t> Manager::Register(std::vector<Voter> voters, uint32_t threshold) {
  const size_t n = voters.size();
  StatusOr<Transaction> tx = Transaction::Create(next_id.fetch_add(1), std::move(voters), threshold);
  if (!tx.ok()) return tx.status();
  const uint64_t id = tx->id();
  {
    std::lock_guard lock(mu_);
    transactions_.emplace(id, std::make_shared<Entry>(std::move(tx).value()));
  }
  Count("registered", static_cast<double>(n));
  return id;
}

StatusOr<VoteAnswer> Manager::Vote(uint64_t id, std::string_view node, std::string_view hash, Phase /*phase*/,
                                   std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  // Checked before anything is counted, as Praefect's service does.
  if (hash.size() != kVoteSize) {
    return InvalidArgument("invalid reference update hash: invalid vote length " + std::to_string(hash.size()));
  }
  Count("started");
  const auto start = std::chrono::steady_clock::now();
  Counted counted = Await(id, node, hash, deadline, stop);
  if (delay_) delay_->ObserveDuration(std::chrono::steady_clock::now() - start);
  Count(counted.action);
  return std::move(counted.answer);
}

Manager::Counted Manager::Await(uint64_t id, std::string_view node, std::string_view hash,
                                std::chrono::steady_clock::time_point deadline, const std::stop_token& stop) {
  std::shared_ptr<Entry> entry = Find(id);
  if (entry == nullptr) return {NotFoundError(id), "invalid"};
  // Declared before the lock: it may run at once (stop requested already)
  // and takes the lock itself, and its destructor waits for a callback
  // running on another thread, which needs the lock released first.
  std::stop_callback wake(stop, [e = entry.get()] {
    std::lock_guard lock(e->mu);
    e->cv.notify_all();
  });
  std::unique_lock lock(entry->mu);
  StatusOr<Ballot> ballot = entry->tx.Cast(node, hash);
  if (!ballot.ok()) return {ballot.status(), "invalid"};
  entry->cv.notify_all();  // this vote may have decided others
  for (;;) {
    switch (entry->tx.Result(*ballot)) {
      case VoterState::kCommitted:
        return {VoteAnswer::kCommit, "committed"};
      case VoterState::kFailed:
        return {VoteAnswer::kAbort, "failed"};
      case VoterState::kStopped:
        return {VoteAnswer::kStop, "stopped"};
      case VoterState::kCanceled:
        return {Cancelled("transaction has been canceled"), "canceled"};
      case VoterState::kUndecided:
        break;
    }
    // Praefect counts a vote that ended with its own call as "invalid" (its
    // context's error is none of the transaction errors).
    const bool stopped = stop.stop_requested();
    if (stopped || std::chrono::steady_clock::now() >= deadline) {
      (void)entry->tx.Withdraw(*ballot);  // undecided: always withdrawn
      entry->cv.notify_all();             // its weight no longer counts: others may be decided
      if (stopped) return {Cancelled("context canceled"), "invalid"};
      return {DeadlineExceeded("context deadline exceeded"), "invalid"};
    }
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      entry->cv.wait(lock);
    } else {
      entry->cv.wait_until(lock, deadline);
    }
  }
}

Status Manager::Stop(uint64_t id) {
  std::shared_ptr<Entry> entry = Find(id);
  if (entry == nullptr) return NotFoundError(id);
  bool stopped;
  {
    std::lock_guard lock(entry->mu);
    stopped = entry->tx.Stop();
    entry->cv.notify_all();
  }
  if (stopped) Count("stopped");
  return Status::Ok();
}

Status Manager::CancelVoter(uint64_t id, std::string_view node) {
  std::shared_ptr<Entry> entry = Find(id);
  if (entry == nullptr) return NotFoundError(id);
  std::lock_guard lock(entry->mu);
  Status st = entry->tx.CancelVoter(node);
  entry->cv.notify_all();
  return st;
}

StatusOr<Outcome> Manager::Finish(uint64_t id) {
  std::shared_ptr<Entry> entry;
  {
    std::lock_guard lock(mu_);
    auto it = transactions_.find(id);
    if (it == transactions_.end()) return NotFoundError(id);
    entry = std::move(it->second);
    transactions_.erase(it);
  }
  Outcome outcome;
  {
    std::lock_guard lock(entry->mu);
    entry->tx.Cancel();
    entry->cv.notify_all();
    outcome = entry->tx.outcome();
  }
  if (subtransactions_) subtransactions_->Observe(static_cast<double>(outcome.subtransactions));
  return outcome;
}

StatusOr<Outcome> Manager::Snapshot(uint64_t id) const {
  std::shared_ptr<Entry> entry = Find(id);
  if (entry == nullptr) return NotFoundError(id);
  std::lock_guard lock(entry->mu);
  return entry->tx.outcome();
}

}  // namespace praefect::transactions
