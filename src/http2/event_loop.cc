#include "http2/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <string>

namespace praefect::http2 {
namespace {

constexpr int kMaxEvents = 256;

Status Errno(const std::string& what) { return Internal(what + ": " + std::strerror(errno)); }

// A handler for the wake-up eventfd: reading it clears the wake-up.
class WakeHandler final : public IoHandler {
 public:
  explicit WakeHandler(int fd) : fd_(fd) {}
  void OnIoEvent(uint32_t) override {
    uint64_t n;
    while (read(fd_, &n, sizeof n) > 0) {
    }
  }

 private:
  const int fd_;
};

}  // namespace

StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return Errno("epoll_create1");
  int wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake < 0) {
    close(ep);
    return Errno("eventfd");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(ep, wake));
}

EventLoop::EventLoop(int epoll_fd, int wake_fd) : epoll_fd_(epoll_fd), wake_fd_(wake_fd) {}

EventLoop::~EventLoop() {
  // What other threads posted after the loop stopped still runs: it may hold
  // the last reference to a call, which then ends cleanly.
  RunPosted();
  RunDeferred();
  RunDoomed();
  close(wake_fd_);
  close(epoll_fd_);
}

Status EventLoop::Add(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return Errno("epoll_ctl(ADD)");
  return Status::Ok();
}

Status EventLoop::Modify(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) return Errno("epoll_ctl(MOD)");
  return Status::Ok();
}

void EventLoop::Remove(int fd) { (void)epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

EventLoop::TimerId EventLoop::AddTimer(Clock::duration delay, std::function<void()> fn) {
  TimerId id = next_timer_++;
  timer_order_.emplace(Clock::now() + delay, id);
  timers_.emplace(id, std::move(fn));
  return id;
}

// Cancelled entries stay in timer_order_ until their time; RunTimers skips
// them.
void EventLoop::CancelTimer(TimerId id) { timers_.erase(id); }

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mu_);
    posted_.push_back(std::move(fn));
    has_posted_.store(true, std::memory_order_release);
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void EventLoop::Stop() {
  stopping_ = true;
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

int EventLoop::NextTimeoutMs() const {
  {
    // A function posted while the loop was busy must not wait for a timer.
    std::lock_guard lock(posted_mu_);
    if (!posted_.empty()) return 0;
  }
  if (!doomed_.empty() || !deferred_.empty()) return 0;
  if (timer_order_.empty()) return -1;
  auto wait = timer_order_.begin()->first - Clock::now();
  if (wait <= Clock::duration::zero()) return 0;
  // Round up: waking a little late is fine, spinning early is not.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
}

void EventLoop::Run() {
  owner_ = std::this_thread::get_id();
  WakeHandler wake(wake_fd_);
  if (!Add(wake_fd_, EPOLLIN, &wake).ok()) return;
  epoll_event events[kMaxEvents];
  while (!stopping_) {
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, NextTimeoutMs());
    now_ = Clock::now();
    for (int i = 0; i < n; ++i) static_cast<IoHandler*>(events[i].data.ptr)->OnIoEvent(events[i].events);
    RunDeferred();
    RunTimers();
    RunDeferred();
    RunPosted();
    RunDeferred();
    RunDoomed();
  }
  Remove(wake_fd_);
  // What was posted before Stop still runs: it may hold the last reference
  // to a call that must be finished.
  RunPosted();
  RunDeferred();
  RunDoomed();
}

void EventLoop::RunPending() {
  owner_ = std::this_thread::get_id();
  now_ = Clock::now();
  RunDeferred();
  RunTimers();
  RunDeferred();
  RunPosted();
  RunDeferred();
  RunDoomed();
}

void EventLoop::RunPosted() {
  // Most turns have nothing posted: no lock then (a Post after this check
  // wakes the loop, which comes back here).
  if (!has_posted_.load(std::memory_order_acquire)) return;
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(posted_mu_);
    batch.swap(posted_);
    has_posted_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : batch) fn();
}

void EventLoop::RunTimers() {
  const Clock::time_point now = Clock::now();
  while (!timer_order_.empty() && timer_order_.begin()->first <= now) {
    TimerId id = timer_order_.begin()->second;
    timer_order_.erase(timer_order_.begin());
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;  // cancelled
    std::function<void()> fn = std::move(it->second);
    timers_.erase(it);
    fn();
  }
}

void EventLoop::RunDeferred() {
  // Two vectors take turns, so that neither loses its capacity: deferring
  // allocates nothing once the loop has warmed up. A nested run (from
  // within a deferred function) takes its batch apart.
  if (running_deferred_) {
    while (!deferred_.empty()) {
      auto batch = std::move(deferred_);
      deferred_.clear();
      for (auto& fn : batch) fn();
    }
    return;
  }
  running_deferred_ = true;
  while (!deferred_.empty()) {
    deferred_running_.swap(deferred_);
    for (auto& fn : deferred_running_) fn();
    deferred_running_.clear();
  }
  running_deferred_ = false;
}

void EventLoop::RunDoomed() {
  while (!doomed_.empty()) {
    // Destructors may doom more objects; take the batch first.
    auto batch = std::move(doomed_);
    doomed_.clear();
    batch.clear();
  }
}

StatusOr<std::unique_ptr<LoopGroup>> LoopGroup::Create(int threads) {
  std::unique_ptr<LoopGroup> group(new LoopGroup());
  for (int i = 0; i < threads; ++i) {
    auto loop = EventLoop::Create();
    if (!loop.ok()) return loop.status();
    group->loops_.push_back(std::move(*loop));
  }
  for (auto& loop : group->loops_) {
    EventLoop* l = loop.get();
    group->threads_.emplace_back([l] { l->Run(); });
  }
  return group;
}

LoopGroup::~LoopGroup() { StopAndJoin(); }

void LoopGroup::StopAndJoin() {
  for (auto& loop : loops_) loop->Stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void LoopGroup::RunOnAll(const std::function<void(EventLoop&)>& fn) {
  std::mutex mu;
  std::condition_variable cv;
  size_t left = loops_.size();
  for (auto& loop : loops_) {
    EventLoop* l = loop.get();
    l->Post([&, l] {
      fn(*l);
      std::lock_guard lock(mu);
      if (--left == 0) cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return left == 0; });
}

}  // namespace praefect::http2
