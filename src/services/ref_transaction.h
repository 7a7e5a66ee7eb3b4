#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>

#include "common/status_or.h"
#include "transactions/manager.h"

// gitaly.RefTransaction (proto/praefect/transaction.proto) as praefect
// serves it: the votes of the nodes taking part in this praefect's
// transactions (src/transactions/manager.h), and StopTransaction, with
// Praefect v16's codes and messages (../shared/reference/transactions.md
// §5). The nodes call it back over the connection praefect opened to them;
// praefect also answers it on its own listeners, as Praefect does.
namespace praefect::services {

inline constexpr std::string_view kVoteTransaction = "/gitaly.RefTransaction/VoteTransaction";
inline constexpr std::string_view kStopTransaction = "/gitaly.RefTransaction/StopTransaction";

bool IsRefTransactionMethod(std::string_view method);

// Thread-safe. `manager` must outlive it.
class RefTransactionService {
 public:
  explicit RefTransactionService(transactions::Manager* manager) : manager_(manager) {}
  // Shutdown().
  ~RefTransactionService();
  RefTransactionService(const RefTransactionService&) = delete;
  RefTransactionService& operator=(const RefTransactionService&) = delete;

  // Answers a call of `method` whose request message is `request`, on a
  // thread of its own, and gives `done` the response message or the error.
  // A vote waits for the other votes of its subtransaction, which arrive on
  // other calls: on a shared pool, waiting votes could take every thread
  // and starve the calls they wait for. `deadline`: the call's.
  void Answer(std::string_view method, std::string request, std::chrono::steady_clock::time_point deadline,
              std::function<void(StatusOr<std::string>)> done);

  // The same on the calling thread (Answer's threads; tests): blocks until
  // the vote is decided, `deadline` passes or `stop` is requested.
  StatusOr<std::string> AnswerNow(std::string_view method, std::string_view request,
                                  std::chrono::steady_clock::time_point deadline, std::stop_token stop = {});

  // Withdraws the votes still waiting (CANCELLED) and joins their threads;
  // later calls are refused UNAVAILABLE.
  void Shutdown();

 private:
  // Joins the threads that finished (under mu_).
  void Reap();

  transactions::Manager* const manager_;
  std::mutex mu_;
  bool shut_down_ = false;                               // GUARDED_BY(mu_)
  std::list<std::jthread> threads_;                      // GUARDED_BY(mu_)
  std::list<std::list<std::jthread>::iterator> ended_;  // GUARDED_BY(mu_)
};

}  // namespace praefect::services
