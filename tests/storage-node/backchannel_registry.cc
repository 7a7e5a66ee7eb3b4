#include "backchannel_registry.h"

#include <grpcpp/create_channel_posix.h>
#include <grpcpp/server_posix.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace praefect::storagenode {

Backchannel::~Backchannel() {
  if (bridge_ != nullptr) bridge_->Stop();
}

bool Backchannel::ended() const { return bridge_ == nullptr || bridge_->ended(); }

StatusOr<std::shared_ptr<grpc::Channel>> Backchannel::VoteChannel() {
  std::lock_guard<std::mutex> lock(mu_);
  // grpc++ cannot tell the state of a channel made from a descriptor
  // (GetState answers SHUTDOWN for any non-client channel), so a channel is
  // kept until a vote on it fails as if its stream broke.
  if (vote_channel_ != nullptr) return vote_channel_;
  if (bridge_ == nullptr) return Unavailable("the backchannel of " + peer_ + " is not running");
  auto fd = bridge_->OpenStream();
  if (!fd.ok()) {
    return Unavailable("cannot open a stream to praefect on the backchannel of " + peer_ + ": " +
                       fd.status().message());
  }
  vote_channel_ = grpc::CreateInsecureChannelFromFd("praefect-backchannel", *fd);
  return vote_channel_;
}

void Backchannel::DiscardVoteChannel(const std::shared_ptr<grpc::Channel>& channel) {
  std::lock_guard<std::mutex> lock(mu_);
  if (vote_channel_ == channel) vote_channel_.reset();
}

yamux::SessionOptions BackchannelRegistry::SessionOptions(const std::string& peer) {
  yamux::SessionOptions options;
  options.role = yamux::Role::kServer;
  options.accept_backlog = 1;
  options.max_stream_window = 16 << 20;
  options.peer = peer;
  return options;
}

BackchannelRegistry::~BackchannelRegistry() { Shutdown(); }

void BackchannelRegistry::AdoptPlain(int fd, grpc::Server* server) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    by_fd_.erase(fd);
  }
  grpc::AddInsecureChannelFromFd(server, fd);
}

Status BackchannelRegistry::AdoptBackchannel(int fd, const std::string& peer, grpc::Server* server) {
  std::shared_ptr<Backchannel> backchannel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    backchannel = std::make_shared<Backchannel>(next_id_++, peer);
  }
  YamuxBridge::Options options;
  options.session = SessionOptions(peer);
  // The bridge's thread never drops the last reference: the registry keeps
  // one until the bridge ended (Reap) or was stopped (Shutdown).
  std::weak_ptr<Backchannel> weak = backchannel;
  options.on_peer_stream = [this, weak, server](int stream_fd) {
    std::shared_ptr<Backchannel> owner = weak.lock();
    if (owner == nullptr) {
      close(stream_fd);
      return;
    }
    Bind(stream_fd, owner);
    grpc::AddInsecureChannelFromFd(server, stream_fd);
  };
  // Under the lock: the bridge's thread binds the streams praefect opens
  // (Bind waits for it), so every handler that finds this backchannel sees
  // bridge_ set.
  std::lock_guard<std::mutex> lock(mu_);
  auto bridge = YamuxBridge::Start(fd, std::move(options));
  if (!bridge.ok()) return bridge.status();
  backchannel->bridge_ = std::move(*bridge);
  all_[backchannel->id()] = std::move(backchannel);
  return Status::Ok();
}

void BackchannelRegistry::Bind(int fd, std::shared_ptr<Backchannel> backchannel) {
  std::lock_guard<std::mutex> lock(mu_);
  by_fd_[fd] = std::move(backchannel);
}

StatusOr<std::shared_ptr<Backchannel>> BackchannelRegistry::ForPeer(const std::string& peer) const {
  std::shared_ptr<Backchannel> found;
  if (peer.rfind("fd:", 0) == 0) {
    char* end = nullptr;
    long fd = std::strtol(peer.c_str() + 3, &end, 10);
    std::lock_guard<std::mutex> lock(mu_);
    if (end != nullptr && *end == '\0') {
      auto it = by_fd_.find(static_cast<int>(fd));
      if (it != by_fd_.end()) found = it->second;
    }
  }
  if (found == nullptr) return NotFound("no backchannel for peer " + peer);
  if (found->ended())
    return Unavailable("the backchannel of peer " + peer + " (praefect at " + found->peer() + ") has ended");
  return found;
}

void BackchannelRegistry::Reap() {
  std::vector<std::shared_ptr<Backchannel>> ended;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = all_.begin(); it != all_.end();) {
      if (it->second->ended()) {
        ended.push_back(std::move(it->second));
        it = all_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto it = by_fd_.begin(); it != by_fd_.end();) {
      if (it->second != nullptr && it->second->ended()) it = by_fd_.erase(it);
      else ++it;
    }
  }
  // Destroyed here, outside the lock: each joins its finished thread.
}

void BackchannelRegistry::Shutdown() {
  std::map<uint64_t, std::shared_ptr<Backchannel>> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all.swap(all_);
  }
  for (auto& [id, backchannel] : all) backchannel->bridge_->Stop();
  std::lock_guard<std::mutex> lock(mu_);
  by_fd_.clear();
}

}  // namespace praefect::storagenode
