#include "backchannel/server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <unistd.h>

#include <chrono>

#include "praefect/transaction.grpc.pb.h"

namespace praefect::backchannel {
namespace {

grpc::Status ToGrpc(const Status& st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message());
}

std::chrono::steady_clock::time_point Deadline(const grpc::ServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(deadline - std::chrono::system_clock::now());
}

}  // namespace

// The answers are RefTransactionService's, so that a vote gets the same
// answer on the backchannel as on praefect's listeners.
class Server::Service final : public gitaly::RefTransaction::Service {
 public:
  Service(services::RefTransactionService* ref_transactions, std::stop_token stop)
      : ref_transactions_(ref_transactions), stop_(std::move(stop)) {}

  grpc::Status VoteTransaction(grpc::ServerContext* context, const gitaly::VoteTransactionRequest* request,
                               gitaly::VoteTransactionResponse* response) override {
    return Answer(services::kVoteTransaction, *context, *request, response);
  }
  grpc::Status StopTransaction(grpc::ServerContext* context, const gitaly::StopTransactionRequest* request,
                               gitaly::StopTransactionResponse* response) override {
    return Answer(services::kStopTransaction, *context, *request, response);
  }

 private:
  grpc::Status Answer(std::string_view method, const grpc::ServerContext& context,
                      const google::protobuf::Message& request, google::protobuf::Message* response) {
    auto answer = ref_transactions_->AnswerNow(method, request.SerializeAsString(), Deadline(context), stop_);
    if (!answer.ok()) return ToGrpc(answer.status());
    if (!response->ParseFromString(*answer)) return grpc::Status(grpc::StatusCode::INTERNAL, "unparsable answer");
    return grpc::Status::OK;
  }

  services::RefTransactionService* const ref_transactions_;
  const std::stop_token stop_;
};

Server::Server(services::RefTransactionService* ref_transactions)
    : service_(std::make_unique<Service>(ref_transactions, stop_.get_token())) {}

StatusOr<std::unique_ptr<Server>> Server::Create(services::RefTransactionService* ref_transactions) {
  std::unique_ptr<Server> server(new Server(ref_transactions));
  grpc::ServerBuilder builder;
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) return Internal("cannot start the backchannel's gRPC server");
  return server;
}

Server::~Server() { Shutdown(); }

void Server::Adopt(int fd) {
  std::lock_guard lock(mu_);
  if (server_ == nullptr) {
    ::close(fd);
    return;
  }
  grpc::AddInsecureChannelFromFd(server_.get(), fd);
}

void Server::Shutdown() {
  stop_.request_stop();
  std::unique_ptr<grpc::Server> server;
  {
    std::lock_guard lock(mu_);
    server = std::move(server_);
  }
  if (server != nullptr) server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

}  // namespace praefect::backchannel
