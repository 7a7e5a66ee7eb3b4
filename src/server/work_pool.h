#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace praefect::server {

// A fixed set of threads running submitted work in order of submission:
// where the coordinator's blocking datastore calls run, so that gRPC's
// callback threads never wait for the database. The destructor runs what
// was submitted, then joins. Thread-safe.
class WorkPool {
 public:
  explicit WorkPool(int threads);
  ~WorkPool();
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  void Submit(std::function<void()> work);
  // Runs what is queued, then stops the threads (idempotent; the destructor
  // does it too). Work submitted afterwards runs on the submitting thread.
  void Drain();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;
};

}  // namespace praefect::server
