#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "http2/director.h"
#include "nodes/node_set.h"

// Ends the transactional calls of a primary that stopped answering: when a
// node's health check fails (Node::healthy turns false), its calls still
// waiting for it are aborted with UNAVAILABLE, so that their secondaries'
// votes and reference locks are released at once and the clients retry on
// the primary elected next, instead of waiting for a hung node (SIGSTOP, a
// stuck disk) for as long as it hangs. Praefect has no such thing: there
// the call waits until the client gives up.
namespace praefect::coordinator {

// Thread-safe.
class PrimaryWatch {
 public:
  explicit PrimaryWatch(std::chrono::milliseconds period = std::chrono::milliseconds(100));
  ~PrimaryWatch();
  PrimaryWatch(const PrimaryWatch&) = delete;
  PrimaryWatch& operator=(const PrimaryWatch&) = delete;

  // Aborts `abort`'s call if `primary` turns unhealthy while the call lives.
  // REQUIRES: `primary` outlives the watch.
  void Watch(const nodes::Node* primary, const std::shared_ptr<http2::CallAbort>& abort);

  // Calls watched now (for tests).
  size_t watched() const;

 private:
  struct Entry {
    const nodes::Node* primary;
    std::weak_ptr<http2::CallAbort> abort;
  };
  void Loop();

  const std::chrono::milliseconds period_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;      // GUARDED_BY(mu_)
  std::vector<Entry> entries_;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace praefect::coordinator
