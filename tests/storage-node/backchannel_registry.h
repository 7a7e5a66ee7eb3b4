#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "common/status_or.h"
#include "yamux_bridge.h"

namespace praefect::storagenode {

// One connection praefect opened with the "backchannel" magic: a yamux
// session (the node is its server) whose streams carry praefect's gRPC to
// the node, and the channel the node votes on, over a stream it opens back
// (reference/transactions.md §4). Thread-safe.
class Backchannel {
 public:
  // `peer` names praefect's end in messages ("127.0.0.1:41234").
  Backchannel(uint64_t id, std::string peer) : id_(id), peer_(std::move(peer)) {}
  // Stops the session (its thread is joined).
  ~Backchannel();
  Backchannel(const Backchannel&) = delete;
  Backchannel& operator=(const Backchannel&) = delete;

  uint64_t id() const { return id_; }
  const std::string& peer() const { return peer_; }
  bool ended() const;

  // The grpc++ channel to praefect's RefTransaction server: one stream the
  // node opens, reused by every vote of this connection; opened again when
  // the earlier one broke. UNAVAILABLE once the connection ended.
  [[nodiscard]] StatusOr<std::shared_ptr<grpc::Channel>> VoteChannel();
  // A vote on the channel failed as if the stream broke: the next vote
  // opens a new one.
  void DiscardVoteChannel(const std::shared_ptr<grpc::Channel>& channel);

 private:
  friend class BackchannelRegistry;
  const uint64_t id_;
  const std::string peer_;
  // Set once, under the registry's lock, before any handler can find the
  // backchannel (BackchannelRegistry::AdoptBackchannel).
  std::unique_ptr<YamuxBridge> bridge_;
  std::mutex mu_;
  std::shared_ptr<grpc::Channel> vote_channel_;  // GUARDED_BY(mu_)
};

// The node's backchannels, and which one each connection of its grpc++
// server belongs to. Every connection reaches the server through
// grpc::AddInsecureChannelFromFd, and grpc++ names such a connection's peer
// "fd:<N>" (grpc 1.51: the endpoint is named after the descriptor), so a
// handler finds its backchannel by the descriptor number in
// ServerContext::peer(). A number is bound each time a descriptor is handed
// to the server, replacing whatever an earlier, closed descriptor of the
// same number was bound to. Thread-safe.
class BackchannelRegistry {
 public:
  // How each backchannel's yamux session runs (Gitaly's server side: accept
  // backlog 1, 16 MiB stream window).
  static yamux::SessionOptions SessionOptions(const std::string& peer);

  BackchannelRegistry() = default;
  // Shutdown().
  ~BackchannelRegistry();
  BackchannelRegistry(const BackchannelRegistry&) = delete;
  BackchannelRegistry& operator=(const BackchannelRegistry&) = delete;

  // Serves `fd`, a connection without backchannel, on `server` (which
  // owns it from now on).
  void AdoptPlain(int fd, grpc::Server* server);
  // Runs a backchannel on `fd`, whose magic bytes were consumed: every
  // stream praefect opens is served on `server`. `server` must outlive the
  // registry's Shutdown.
  [[nodiscard]] Status AdoptBackchannel(int fd, const std::string& peer, grpc::Server* server);

  // The backchannel of the connection a call came on, from its
  // ServerContext::peer(). NOT_FOUND when it came on a connection without
  // backchannel; UNAVAILABLE when that backchannel has ended.
  [[nodiscard]] StatusOr<std::shared_ptr<Backchannel>> ForPeer(const std::string& peer) const;

  // Forgets the backchannels whose connection ended.
  void Reap();
  // Stops every backchannel (joins their threads).
  void Shutdown();

 private:
  void Bind(int fd, std::shared_ptr<Backchannel> backchannel);

  mutable std::mutex mu_;
  uint64_t next_id_ = 1;                                   // GUARDED_BY(mu_)
  std::map<int, std::shared_ptr<Backchannel>> by_fd_;      // GUARDED_BY(mu_); null: no backchannel
  std::map<uint64_t, std::shared_ptr<Backchannel>> all_;  // GUARDED_BY(mu_)
};

}  // namespace praefect::storagenode
