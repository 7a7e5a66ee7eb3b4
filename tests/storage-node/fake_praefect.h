#pragma once

// Praefect's part of a backchannel connection, for the node's transaction
// tests: it dials the node, writes the 11 bytes "backchannel" and runs a
// yamux session as its client (YamuxBridge, as the node runs its server
// side); its gRPC channel to the node runs on the first stream it opens,
// and every stream the node opens back is served by a fake
// gitaly.RefTransaction that records the votes and answers as the test
// says.
#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "praefect/transaction.grpc.pb.h"
#include "transaction_info.h"
#include "yamux_bridge.h"

namespace praefect::storagenode::testing {

struct RecordedVote {
  uint64_t id = 0;
  std::string node;
  std::string hash;  // 20 raw bytes
  gitaly::VoteTransactionRequest::Phase phase = gitaly::VoteTransactionRequest::UNKNOWN_PHASE;
  gitaly::VoteTransactionResponse::TransactionState answer = gitaly::VoteTransactionResponse::COMMIT;
};

using VoteState = gitaly::VoteTransactionResponse::TransactionState;

// Thread-safe.
class FakePraefect {
 public:
  // Decides the answer to a vote; `index` counts the votes of its
  // transaction from 0. As praefect, a transaction that answered ABORT
  // answers ABORT from then on, and one that was stopped STOP, whatever
  // the policy says.
  using Policy = std::function<VoteState(const RecordedVote& vote, size_t index)>;

  FakePraefect();
  ~FakePraefect();
  FakePraefect(const FakePraefect&) = delete;
  FakePraefect& operator=(const FakePraefect&) = delete;

  // Dials `address` ("127.0.0.1:<port>"); false (and prints why) on failure.
  bool Connect(const std::string& address);
  void Close();
  // The channel to the node, over the backchannel connection.
  std::shared_ptr<grpc::Channel> Channel() const { return channel_; }

  void SetPolicy(Policy policy);
  // Votes and StopTransaction calls of transaction `id`, in arrival order.
  std::vector<RecordedVote> Votes(uint64_t id) const;
  size_t AllVotes() const;
  bool Stopped(uint64_t id) const;
  // Streams the node opened back (one per vote channel).
  size_t node_streams() const;

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<YamuxBridge> bridge_;
  std::shared_ptr<grpc::Channel> channel_;
};

// A client context with a deadline and, when `tx` is given, the
// transaction metadata praefect would send.
std::unique_ptr<grpc::ClientContext> TxContext(const TransactionInfo* tx);

}  // namespace praefect::storagenode::testing
