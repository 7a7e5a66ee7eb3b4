#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace praefect::http2 {

// The messages of a server stream answered here (Route::local_stream),
// made off the data plane's loops as they come, so that a long answer
// (dataloss over every repository) is never held whole: the producer
// blocks while more than `limit` bytes are waiting, queued here or held
// by the call and not yet taken by the client's stream. Thread-safe.
class LocalStream {
 public:
  explicit LocalStream(size_t limit) : limit_(limit) {}

  // ---- The producer (any thread but the call's loop).

  // Queues `message`, after waiting while more than `limit` bytes wait.
  // False, at once, when the call is gone: stop producing.
  bool Push(std::string message);
  // The last call of the producer: every message was pushed and `status`
  // ends the call (messages pushed before an error are sent first).
  void Finish(Status status);

  // ---- The call (its loop).

  // `notify` is called, from the producer's thread, when there is
  // something to Take after a Take (or before the first one): it must only
  // post work to the loop.
  void SetNotify(std::function<void()> notify);
  struct Taken {
    std::vector<std::string> messages;
    std::optional<Status> finished;  // set once everything was taken
  };
  Taken Take();
  // `bytes` of what was taken moved on to the client's stream.
  void Consumed(size_t bytes);
  // The call is gone or ended: Push returns false from now on.
  void Cancel();

  // Each message's share of the limit: its bytes and its 5-byte prefix.
  static size_t Cost(const std::string& message) { return message.size() + 5; }

 private:
  void NotifyLocked(std::unique_lock<std::mutex>& lock);

  const size_t limit_;
  std::mutex mu_;
  std::condition_variable room_;
  std::deque<std::string> queue_;            // GUARDED_BY(mu_)
  size_t waiting_ = 0;                       // GUARDED_BY(mu_): queued and held, not consumed
  bool cancelled_ = false;                   // GUARDED_BY(mu_)
  std::optional<Status> finished_;           // GUARDED_BY(mu_)
  std::function<void()> notify_;             // GUARDED_BY(mu_)
  bool notify_pending_ = false;              // GUARDED_BY(mu_): notified, not yet taken
};

}  // namespace praefect::http2
