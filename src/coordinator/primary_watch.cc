#include "coordinator/primary_watch.h"

namespace praefect::coordinator {

PrimaryWatch::PrimaryWatch(std::chrono::milliseconds period) : period_(period), thread_([this] { Loop(); }) {}

PrimaryWatch::~PrimaryWatch() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PrimaryWatch::Watch(const nodes::Node* primary, const std::shared_ptr<http2::CallAbort>& abort) {
  std::lock_guard lock(mu_);
  entries_.push_back(Entry{primary, abort});
}

size_t PrimaryWatch::watched() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const Entry& e : entries_) n += e.abort.expired() ? 0 : 1;
  return n;
}

void PrimaryWatch::Loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period_, [this] { return stopping_; })) {
    std::vector<std::pair<const nodes::Node*, std::shared_ptr<http2::CallAbort>>> doomed;
    std::erase_if(entries_, [&](const Entry& e) {
      if (e.abort.expired()) return true;
      if (e.primary->healthy.load()) return false;
      if (auto abort = e.abort.lock()) doomed.emplace_back(e.primary, std::move(abort));
      return true;
    });
    if (doomed.empty()) continue;
    lock.unlock();
    for (auto& [primary, abort] : doomed)
      abort->Abort(Unavailable(primary->Label() +
                               ", the repository's primary, stopped answering health checks during the write; "
                               "the write was not acknowledged: retry, it goes to the primary elected next"));
    lock.lock();
  }
}

}  // namespace praefect::coordinator
