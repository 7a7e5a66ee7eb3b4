#pragma once

#include <atomic>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status_or.h"
#include "transaction_voter.h"

namespace praefect::storagenode {

// The node's end of its hook program's requests (hook_protocol.h): a unix
// socket in the node's private directory, and the calls whose git commands
// may vote through it, by token. One thread accepts; each connection (one
// request) gets a thread of its own, since a vote may wait minutes for
// praefect's quorum. Thread-safe.
class HookServer {
 public:
  // Listens on `socket_path` (replacing a stale socket).
  [[nodiscard]] static StatusOr<std::unique_ptr<HookServer>> Start(const std::string& socket_path);
  // Stop().
  ~HookServer();
  HookServer(const HookServer&) = delete;
  HookServer& operator=(const HookServer&) = delete;

  const std::string& socket_path() const { return socket_path_; }

  // Lets the hooks of a call vote through `voter`; returns the call's token.
  std::string Register(std::shared_ptr<Voter> voter);
  void Unregister(const std::string& token);

  // Stops accepting, ends the requests in progress, joins every thread.
  void Stop();

 private:
  struct Connection {
    int fd;
    std::thread thread;
    std::atomic<bool> done{false};
  };

  HookServer(std::string socket_path, int listen_fd, int wake_fd)
      : socket_path_(std::move(socket_path)), listen_fd_(listen_fd), wake_fd_(wake_fd) {}
  void AcceptLoop();
  void Serve(int fd);
  // The answer line to one request.
  std::string Answer(const std::string& header, int fd);
  void ReapConnections();

  const std::string socket_path_;
  const int listen_fd_;
  const int wake_fd_;
  std::thread accept_thread_;
  std::atomic<bool> stop_{false};

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Voter>> voters_;  // GUARDED_BY(mu_)
  std::list<Connection> connections_;                      // GUARDED_BY(mu_)
};

}  // namespace praefect::storagenode
