#include "server/work_pool.h"

namespace praefect::server {

WorkPool::WorkPool(int threads) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> work;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
          if (queue_.empty()) return;  // stopping, and nothing left
          work = std::move(queue_.front());
          queue_.pop_front();
        }
        work();
      }
    });
  }
}

WorkPool::~WorkPool() { Drain(); }

void WorkPool::Drain() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkPool::Submit(std::function<void()> work) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(work));
      cv_.notify_one();
      return;
    }
  }
  work();
}

}  // namespace praefect::server
