#pragma once

#include <grpcpp/server.h>

#include <memory>
#include <mutex>
#include <stop_token>

#include "services/ref_transaction.h"

// The server the nodes reach praefect on through their backchannels
// (../shared/reference/transactions.md §4): gitaly.RefTransaction only, with
// no token check, as Praefect's backchannel server. A grpc++ server with no
// listening port: each stream a node opens on its connection's yamux session
// becomes one connection of this server (a socketpair, see client_layer.h).
namespace praefect::backchannel {

// Thread-safe.
class Server {
 public:
  // `ref_transactions` must outlive the server.
  static StatusOr<std::unique_ptr<Server>> Create(services::RefTransactionService* ref_transactions);
  // Shutdown().
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves one more connection on `fd` (one end of a socketpair; the
  // server owns it from now on).
  void Adopt(int fd);

  // Withdraws the votes still waiting (CANCELLED) and stops serving.
  void Shutdown();

 private:
  class Service;
  explicit Server(services::RefTransactionService* ref_transactions);

  std::stop_source stop_;
  std::unique_ptr<Service> service_;
  std::mutex mu_;  // Adopt comes from every loop, Shutdown from the main thread
  std::unique_ptr<grpc::Server> server_;  // GUARDED_BY(mu_); null once shut down
};

}  // namespace praefect::backchannel
