#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backchannel_registry.h"
#include "common/status_or.h"

namespace praefect::storagenode {

// The node's listening sockets and their accept loop, with Gitaly's
// listenmux: each accepted connection's first bytes are peeked (MSG_PEEK,
// nothing consumed); when they are the 11 bytes "backchannel" they are
// consumed and the connection becomes a backchannel (BackchannelRegistry),
// otherwise the connection goes to the grpc++ server untouched. A
// connection that sends nothing decisive within kSniffTimeout is closed.
//
// The loop runs on one thread; it never blocks on a connection (peeks are
// non-blocking; a connection that sent a proper prefix of the magic is
// peeked again every kPrefixRetry instead of being polled, since its
// unread bytes keep it readable). Thread-safe: Stop from any thread.
class NodeListener {
 public:
  static constexpr auto kSniffTimeout = std::chrono::seconds(10);
  static constexpr auto kPrefixRetry = std::chrono::milliseconds(5);

  // Binds `listen_addr` ("host:port", "[v6]:port", ":port"; port 0 picks
  // one) and/or `socket_path` (a unix socket, replacing a stale one); either
  // may be empty. The errors name the address and the system's reason.
  [[nodiscard]] static StatusOr<std::unique_ptr<NodeListener>> Bind(const std::string& listen_addr,
                                                                   const std::string& socket_path);
  // Stop().
  ~NodeListener();
  NodeListener(const NodeListener&) = delete;
  NodeListener& operator=(const NodeListener&) = delete;

  // The TCP port bound (0 without listen_addr).
  int tcp_port() const { return tcp_port_; }

  // Starts accepting. `server` and `registry` must outlive Stop().
  void Start(grpc::Server* server, BackchannelRegistry* registry);
  // Stops accepting, closes the listening sockets and the connections
  // still being sniffed, and joins the thread. Idempotent.
  void Stop();

 private:
  struct Sniffing {
    int fd;
    std::string peer;
    std::chrono::steady_clock::time_point deadline;
    std::chrono::steady_clock::time_point retry_at;  // a prefix came: peek again then, not polled before
    bool waiting_prefix = false;
  };
  enum class Verdict { kWait, kWaitPrefix, kPlain, kBackchannel, kClose };

  NodeListener() = default;
  void Run();
  void Accept(int listen_fd);
  static Verdict Sniff(int fd);
  void Decide(Sniffing& conn, Verdict verdict);

  std::vector<int> listen_fds_;
  int tcp_port_ = 0;
  int wake_fd_ = -1;
  grpc::Server* server_ = nullptr;
  BackchannelRegistry* registry_ = nullptr;
  std::vector<Sniffing> sniffing_;  // the loop's thread only
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace praefect::storagenode
