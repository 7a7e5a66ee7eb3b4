#include "services/ref_transaction.h"

#include "praefect/transaction.pb.h"

namespace praefect::services {

bool IsRefTransactionMethod(std::string_view method) {
  return method == kVoteTransaction || method == kStopTransaction;
}

RefTransactionService::~RefTransactionService() { Shutdown(); }

StatusOr<std::string> RefTransactionService::AnswerNow(std::string_view method, std::string_view request,
                                                       std::chrono::steady_clock::time_point deadline,
                                                       std::stop_token stop) {
  if (method == kVoteTransaction) {
    gitaly::VoteTransactionRequest vote;
    if (!vote.ParseFromArray(request.data(), static_cast<int>(request.size())))
      return InvalidArgument("VoteTransaction: the request is not a VoteTransactionRequest message");
    auto answer = manager_->Vote(vote.transaction_id(), vote.node(), vote.reference_updates_hash(),
                                 static_cast<transactions::Phase>(vote.phase()), deadline, std::move(stop));
    if (!answer.ok()) return answer.status();
    gitaly::VoteTransactionResponse response;
    response.set_state(static_cast<gitaly::VoteTransactionResponse::TransactionState>(*answer));
    return response.SerializeAsString();
  }
  if (method == kStopTransaction) {
    gitaly::StopTransactionRequest stop_request;
    if (!stop_request.ParseFromArray(request.data(), static_cast<int>(request.size())))
      return InvalidArgument("StopTransaction: the request is not a StopTransactionRequest message");
    if (Status st = manager_->Stop(stop_request.transaction_id()); !st.ok()) return st;
    return gitaly::StopTransactionResponse().SerializeAsString();
  }
  return Status(StatusCode::kUnimplemented, "unknown method " + std::string(method) + " of gitaly.RefTransaction");
}

void RefTransactionService::Answer(std::string_view method, std::string request,
                                   std::chrono::steady_clock::time_point deadline,
                                   std::function<void(StatusOr<std::string>)> done) {
  std::lock_guard lock(mu_);
  if (shut_down_) {
    done(Unavailable("praefect is stopping: its transactions are over"));
    return;
  }
  Reap();
  threads_.emplace_front();
  auto self = threads_.begin();
  *self = std::jthread([this, self, method = std::string(method), request = std::move(request), deadline,
                        done = std::move(done)](std::stop_token stop) {
    done(AnswerNow(method, request, deadline, stop));
    std::lock_guard ended(mu_);
    ended_.push_back(self);
  });
}

void RefTransactionService::Reap() {
  for (auto it : ended_) {
    it->join();
    threads_.erase(it);
  }
  ended_.clear();
}

void RefTransactionService::Shutdown() {
  std::list<std::jthread> running;
  {
    std::lock_guard lock(mu_);
    shut_down_ = true;
    Reap();
    for (auto& t : threads_) t.request_stop();
    running.swap(threads_);
    ended_.clear();
  }
  running.clear();  // joins: the votes return CANCELLED at once
  std::lock_guard lock(mu_);
  ended_.clear();  // they named threads of `running`
}

}  // namespace praefect::services
