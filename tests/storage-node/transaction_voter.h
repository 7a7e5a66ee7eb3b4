#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "backchannel_registry.h"
#include "common/status_or.h"
#include "praefect/transaction.pb.h"
#include "transaction_info.h"

namespace praefect::storagenode {

using VotePhase = gitaly::VoteTransactionRequest::Phase;

// "prepared phase" for messages.
std::string PhaseName(VotePhase phase);

// SHA-1 of `data`: 20 raw bytes, what a vote carries.
std::string Sha1(std::string_view data);

// What a failed Voter::Vote said, as returned (not prefixed): praefect
// answered STOP, or ABORT.
bool IsStopped(const Status& vote);
bool IsAborted(const Status& vote);

// Casts one call's votes in its transaction (gitaly.RefTransaction), over
// the backchannel of the connection the call came on, as Gitaly does
// (reference/transactions.md §5, §7). Thread-safe: the call's handler and
// the hook socket's threads vote through it.
class Voter {
 public:
  // Gitaly's cap on the wait for an answer.
  static constexpr auto kVoteTimeout = std::chrono::minutes(5);

  // `call_deadline` is the call's own (system_clock max for none): a vote
  // never waits beyond it.
  Voter(TransactionInfo info, std::shared_ptr<Backchannel> backchannel,
        std::chrono::system_clock::time_point call_deadline)
      : info_(std::move(info)), backchannel_(std::move(backchannel)), call_deadline_(call_deadline) {}
  Voter(const Voter&) = delete;
  Voter& operator=(const Voter&) = delete;

  const TransactionInfo& info() const { return info_; }

  // Votes `hash` (20 bytes) in `phase`. OK when praefect answers COMMIT;
  // ABORTED "transaction was aborted: ..." for ABORT, "transaction was
  // stopped: ..." for STOP; the RPC's own error (code kept) when the vote
  // could not be cast. The first failure is kept (failure()).
  [[nodiscard]] Status Vote(std::string_view hash, VotePhase phase);
  // Stops the transaction (gitaly.RefTransaction/StopTransaction): the
  // other voters' pending and later votes are answered STOP.
  [[nodiscard]] Status Stop();

  // The call ended: votes in flight are cancelled, later ones refused.
  void Cancel();

  // The first failed vote of the call, OK if none.
  Status failure() const;
  // Some vote was answered STOP.
  bool stopped() const;

 private:
  // Runs one RPC on the vote channel with the vote deadline; `rpc` gets the
  // stub and the context.
  template <typename Rpc>
  grpc::Status Call(const char* what, Rpc rpc);
  void Record(const Status& failure, bool stopped);

  const TransactionInfo info_;
  const std::shared_ptr<Backchannel> backchannel_;
  const std::chrono::system_clock::time_point call_deadline_;
  mutable std::mutex mu_;
  std::set<grpc::ClientContext*> in_flight_;  // GUARDED_BY(mu_)
  bool cancelled_ = false;                    // GUARDED_BY(mu_)
  int votes_ = 0;                             // GUARDED_BY(mu_)
  Status failure_;                            // GUARDED_BY(mu_)
  bool stopped_ = false;                      // GUARDED_BY(mu_)
};

}  // namespace praefect::storagenode
