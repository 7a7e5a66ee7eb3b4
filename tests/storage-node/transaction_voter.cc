#include "transaction_voter.h"

#include <openssl/evp.h>

#include <algorithm>

#include "log/log.h"
#include "praefect/transaction.grpc.pb.h"

namespace praefect::storagenode {

std::string PhaseName(VotePhase phase) {
  switch (phase) {
    case gitaly::VoteTransactionRequest::PREPARED_PHASE: return "prepared phase";
    case gitaly::VoteTransactionRequest::COMMITTED_PHASE: return "committed phase";
    case gitaly::VoteTransactionRequest::SYNCHRONIZED_PHASE: return "synchronized phase";
    default: return "unknown phase";
  }
}

std::string Sha1(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha1(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), len);
}

namespace {
constexpr std::string_view kStoppedPrefix = "transaction was stopped";
constexpr std::string_view kAbortedPrefix = "transaction was aborted";
}  // namespace

bool IsStopped(const Status& vote) {
  return vote.code() == StatusCode::kAborted && vote.message().rfind(kStoppedPrefix, 0) == 0;
}

bool IsAborted(const Status& vote) {
  return vote.code() == StatusCode::kAborted && vote.message().rfind(kAbortedPrefix, 0) == 0;
}

template <typename Rpc>
grpc::Status Voter::Call(const char* what, Rpc rpc) {
  auto channel = backchannel_->VoteChannel();
  if (!channel.ok())
    return grpc::Status(static_cast<grpc::StatusCode>(channel.status().code()), channel.status().message());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::min(call_deadline_, std::chrono::system_clock::now() + kVoteTimeout));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancelled_)
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          std::string(what) + " refused: the call of this transaction has ended");
    in_flight_.insert(&ctx);
  }
  auto stub = gitaly::RefTransaction::NewStub(*channel);
  grpc::Status st = rpc(*stub, ctx);
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.erase(&ctx);
  }
  // A broken stream to praefect: the next vote opens a new one.
  if (st.error_code() == grpc::StatusCode::UNAVAILABLE) backchannel_->DiscardVoteChannel(*channel);
  return st;
}

Status Voter::Vote(std::string_view hash, VotePhase phase) {
  gitaly::VoteTransactionRequest req;
  req.set_transaction_id(info_.id);
  req.set_node(info_.node);
  req.set_reference_updates_hash(hash.data(), hash.size());
  req.set_phase(phase);
  gitaly::VoteTransactionResponse resp;
  int number;
  {
    std::lock_guard<std::mutex> lock(mu_);
    number = ++votes_;
  }
  const auto started = std::chrono::steady_clock::now();
  grpc::Status st = Call("vote", [&](gitaly::RefTransaction::Stub& stub, grpc::ClientContext& ctx) {
    return stub.VoteTransaction(&ctx, req, &resp);
  });
  const long long micros =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count();
  const std::string where = "vote " + std::to_string(number) + " (" + PhaseName(phase) + ") of \"" + info_.node +
                            "\" in transaction " + std::to_string(info_.id);
  if (!st.ok()) {
    Status failure(static_cast<StatusCode>(st.error_code()),
                   "voting on the reference transaction failed: " + where + " could not be cast over the backchannel (" +
                       backchannel_->peer() + "): " + st.error_message());
    log::Warn("transaction vote failed", {{"transaction_id", static_cast<long long>(info_.id)},
                                          {"error", failure.message()}, {"duration_us", micros}});
    Record(failure, false);
    return failure;
  }
  log::Debug("transaction vote", {{"transaction_id", static_cast<long long>(info_.id)},
                                  {"phase", PhaseName(phase)}, {"state", static_cast<int>(resp.state())},
                                  {"duration_us", micros}});
  switch (resp.state()) {
    case gitaly::VoteTransactionResponse::COMMIT: return Status::Ok();
    case gitaly::VoteTransactionResponse::STOP: {
      Status stopped(StatusCode::kAborted, std::string(kStoppedPrefix) + ": praefect answered STOP to " + where +
                                               " (a hook on the primary declined the change)");
      Record(stopped, true);
      return stopped;
    }
    default: {
      Status aborted(StatusCode::kAborted,
                     std::string(kAbortedPrefix) + ": praefect answered ABORT to " + where +
                         ": the voters did not reach quorum on the same change");
      Record(aborted, false);
      return aborted;
    }
  }
}

Status Voter::Stop() {
  gitaly::StopTransactionRequest req;
  req.set_transaction_id(info_.id);
  gitaly::StopTransactionResponse resp;
  grpc::Status st = Call("stop", [&](gitaly::RefTransaction::Stub& stub, grpc::ClientContext& ctx) {
    return stub.StopTransaction(&ctx, req, &resp);
  });
  if (st.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(st.error_code()),
                "stopping transaction " + std::to_string(info_.id) + " over the backchannel (" + backchannel_->peer() +
                    ") failed: " + st.error_message());
}

void Voter::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : in_flight_) ctx->TryCancel();
}

void Voter::Record(const Status& failure, bool stopped) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failure_.ok()) failure_ = failure;
  stopped_ = stopped_ || stopped;
}

Status Voter::failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failure_;
}

bool Voter::stopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

}  // namespace praefect::storagenode
