#include "http2/local_stream.h"

#include <utility>

namespace praefect::http2 {

bool LocalStream::Push(std::string message) {
  std::unique_lock lock(mu_);
  // One message always fits, however large, when nothing waits.
  room_.wait(lock, [&] { return cancelled_ || waiting_ == 0 || waiting_ + Cost(message) <= limit_; });
  if (cancelled_) return false;
  waiting_ += Cost(message);
  queue_.push_back(std::move(message));
  NotifyLocked(lock);
  return true;
}

void LocalStream::Finish(Status status) {
  std::unique_lock lock(mu_);
  finished_ = std::move(status);
  NotifyLocked(lock);
}

void LocalStream::SetNotify(std::function<void()> notify) {
  std::unique_lock lock(mu_);
  notify_ = std::move(notify);
  if (!queue_.empty() || finished_) NotifyLocked(lock);
}

void LocalStream::NotifyLocked(std::unique_lock<std::mutex>& lock) {
  if (!notify_ || notify_pending_) return;
  notify_pending_ = true;
  std::function<void()> notify = notify_;
  lock.unlock();
  notify();
  lock.lock();
}

LocalStream::Taken LocalStream::Take() {
  std::lock_guard lock(mu_);
  notify_pending_ = false;
  Taken t;
  t.messages.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  if (finished_) t.finished = *finished_;
  return t;
}

void LocalStream::Consumed(size_t bytes) {
  std::lock_guard lock(mu_);
  waiting_ = bytes > waiting_ ? 0 : waiting_ - bytes;
  room_.notify_all();
}

void LocalStream::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  room_.notify_all();
}

}  // namespace praefect::http2
