#include "fake_praefect.h"

#include <arpa/inet.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/server_posix.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace praefect::storagenode::testing {

class FakePraefect::Service final : public gitaly::RefTransaction::Service {
 public:
  grpc::Status VoteTransaction(grpc::ServerContext*, const gitaly::VoteTransactionRequest* req,
                               gitaly::VoteTransactionResponse* resp) override {
    RecordedVote vote;
    vote.id = req->transaction_id();
    vote.node = req->node();
    vote.hash = req->reference_updates_hash();
    vote.phase = req->phase();
    std::lock_guard<std::mutex> lock(mu_);
    auto& votes = votes_[vote.id];
    VoteState answer = policy_ ? policy_(vote, votes.size()) : gitaly::VoteTransactionResponse::COMMIT;
    // Praefect's rules: failed and stopped transactions stay so.
    if (aborted_[vote.id]) answer = gitaly::VoteTransactionResponse::ABORT;
    if (stopped_[vote.id]) answer = gitaly::VoteTransactionResponse::STOP;
    if (answer == gitaly::VoteTransactionResponse::ABORT) aborted_[vote.id] = true;
    if (answer == gitaly::VoteTransactionResponse::STOP) stopped_[vote.id] = true;
    vote.answer = answer;
    votes.push_back(vote);
    resp->set_state(answer);
    return grpc::Status::OK;
  }

  grpc::Status StopTransaction(grpc::ServerContext*, const gitaly::StopTransactionRequest* req,
                               gitaly::StopTransactionResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_[req->transaction_id()] = true;
    return grpc::Status::OK;
  }

  std::mutex mu_;
  Policy policy_;                                            // GUARDED_BY(mu_)
  std::map<uint64_t, std::vector<RecordedVote>> votes_;      // GUARDED_BY(mu_)
  std::map<uint64_t, bool> aborted_;                         // GUARDED_BY(mu_)
  std::map<uint64_t, bool> stopped_;                         // GUARDED_BY(mu_)
  std::atomic<size_t> node_streams_{0};
};

FakePraefect::FakePraefect() : service_(std::make_unique<Service>()) {
  grpc::ServerBuilder builder;
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
}

FakePraefect::~FakePraefect() { Close(); }

bool FakePraefect::Connect(const std::string& address) {
  size_t colon = address.rfind(':');
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &sin.sin_addr) != 1) {
    std::fprintf(stderr, "fake praefect: cannot parse %s\n", address.c_str());
    return false;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0) {
    std::fprintf(stderr, "fake praefect: connecting to %s: %s\n", address.c_str(), std::strerror(errno));
    if (fd >= 0) close(fd);
    return false;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  YamuxBridge::Options options;
  options.session.role = yamux::Role::kClient;
  options.session.peer = address;
  options.preamble = "backchannel";
  options.on_peer_stream = [this](int stream_fd) {
    service_->node_streams_.fetch_add(1);
    grpc::AddInsecureChannelFromFd(server_.get(), stream_fd);
  };
  auto bridge = YamuxBridge::Start(fd, std::move(options));
  if (!bridge.ok()) {
    std::fprintf(stderr, "fake praefect: %s\n", bridge.status().message().c_str());
    return false;
  }
  bridge_ = std::move(*bridge);
  // praefect's own HTTP/2 runs on the first stream it opens.
  auto stream = bridge_->OpenStream();
  if (!stream.ok()) {
    std::fprintf(stderr, "fake praefect: opening the first stream: %s\n", stream.status().message().c_str());
    return false;
  }
  channel_ = grpc::CreateInsecureChannelFromFd("storage-node", *stream);
  return true;
}

void FakePraefect::Close() {
  channel_.reset();
  if (bridge_ != nullptr) bridge_->Stop();
  if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  bridge_.reset();
}

void FakePraefect::SetPolicy(Policy policy) {
  std::lock_guard<std::mutex> lock(service_->mu_);
  service_->policy_ = std::move(policy);
}

std::vector<RecordedVote> FakePraefect::Votes(uint64_t id) const {
  std::lock_guard<std::mutex> lock(service_->mu_);
  auto it = service_->votes_.find(id);
  return it == service_->votes_.end() ? std::vector<RecordedVote>() : it->second;
}

size_t FakePraefect::AllVotes() const {
  std::lock_guard<std::mutex> lock(service_->mu_);
  size_t n = 0;
  for (const auto& [id, votes] : service_->votes_) n += votes.size();
  return n;
}

bool FakePraefect::Stopped(uint64_t id) const {
  std::lock_guard<std::mutex> lock(service_->mu_);
  auto it = service_->stopped_.find(id);
  return it != service_->stopped_.end() && it->second;
}

size_t FakePraefect::node_streams() const { return service_->node_streams_.load(); }

std::unique_ptr<grpc::ClientContext> TxContext(const TransactionInfo* tx) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (tx != nullptr) ctx->AddMetadata(std::string(kTransactionMetadataKey), EncodeTransactionInfo(*tx));
  return ctx;
}

}  // namespace praefect::storagenode::testing
