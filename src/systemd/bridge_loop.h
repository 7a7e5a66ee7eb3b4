#pragma once

// Internal to src/systemd/: one event-loop thread of the TLS bridge.

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/status_or.h"
#include "systemd/bridge_connection.h"
#include "systemd/tls_bridge.h"

namespace praefect::systemd {

// An epoll loop on its own thread: accepts on the shared listening socket,
// times out handshakes and drives its connections (BridgeConnection).
// The public methods are thread-safe; everything else runs on the loop's
// thread.
class BridgeLoop {
 public:
  // REQUIRES: `listen_fd` and `ctx` outlive the loop.
  static StatusOr<std::unique_ptr<BridgeLoop>> Create(int listen_fd, const std::atomic<SSL_CTX*>* ctx, HandOff hand_off,
                                                      TlsBridgeOptions options);
  ~BridgeLoop();  // closes every connection of this loop
  BridgeLoop(const BridgeLoop&) = delete;
  BridgeLoop& operator=(const BridgeLoop&) = delete;

  // Blocks until the loop has stopped accepting and dropped its handshakes.
  void StopAccepting();

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr uint64_t kWakeId = 0, kListenId = 1;

  BridgeLoop(int epoll_fd, int wake_fd, int listen_fd, const std::atomic<SSL_CTX*>* ctx, HandOff hand_off, TlsBridgeOptions options);
  void Wake();
  void Run();
  void Accept();
  void Drive(uint64_t id);
  void ExpireHandshakes(Clock::time_point now);
  void DropHandshakes();

  const int epoll_fd_;
  const int wake_fd_;  // eventfd
  const int listen_fd_;
  const std::atomic<SSL_CTX*>* const ctx_;  // the current context (TlsBridge swaps it on reload)
  const HandOff hand_off_;
  const TlsBridgeOptions options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> stop_accepting_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool accept_stopped_ = false;  // GUARDED_BY(mu_)

  // Loop thread only. Ids are never reused, so an event still queued for a
  // connection closed earlier in the same batch finds nothing.
  std::unordered_map<uint64_t, std::unique_ptr<BridgeConnection>> conns_;
  std::deque<std::pair<Clock::time_point, uint64_t>> handshakes_;  // by deadline
  uint64_t next_id_ = 2;
  bool accepting_ = true;
  std::thread thread_;  // last: starts once the members above are set
};

}  // namespace praefect::systemd
