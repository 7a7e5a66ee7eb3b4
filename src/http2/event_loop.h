#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status_or.h"

// The data plane's event loop: one thread, epoll for sockets, a timer queue,
// and a queue of functions other threads post to it. Everything a
// connection does happens on the loop that owns it, so the data path takes
// no lock; other threads (the Director's executor, the signal thread) talk
// to a loop only through Post.
//
// Why our own loop and not libevent: nghttp2 is callback driven and needs
// nothing from a loop but readiness, timers and a wake-up; a hundred lines
// of epoll give exactly that with no extra dependency, and keep the order
// of callbacks (and so every invariant of the proxy) in our hands.
namespace praefect::http2 {

// Receives the readiness of one file descriptor. Lives until the loop has
// let go of it: remove it with EventLoop::Remove, and delete it only with
// EventLoop::DeleteSoon (events of the current batch may still name it).
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  // `events`: EPOLLIN, EPOLLOUT, EPOLLERR, EPOLLHUP, EPOLLRDHUP as epoll reports them.
  virtual void OnIoEvent(uint32_t events) = 0;
};

// Not thread-safe, except Post, Stop and InLoopThread. Create on any
// thread; Run on the thread that is to own it.
class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using TimerId = uint64_t;

  static StatusOr<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Watches `fd` for `events` (EPOLLIN and/or EPOLLOUT; level-triggered),
  // reporting to `handler` until Remove. The loop does not own either.
  [[nodiscard]] Status Add(int fd, uint32_t events, IoHandler* handler);
  [[nodiscard]] Status Modify(int fd, uint32_t events, IoHandler* handler);
  void Remove(int fd);

  // Runs `fn` on the loop after `delay`, unless cancelled first. The id
  // is never reused.
  TimerId AddTimer(Clock::duration delay, std::function<void()> fn);
  void CancelTimer(TimerId id);

  // Runs `fn` on the loop's thread soon; thread-safe. Functions posted from
  // one thread run in the order they were posted. A function posted after
  // the loop stopped is destroyed unrun when the loop is.
  void Post(std::function<void()> fn);

  // Runs `fn` on the loop once the current batch of events, timers or posts
  // is handled, before the loop sleeps: work gathered from many callbacks
  // (a session's output) is done once. REQUIRES: on the loop's thread.
  void Defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

  // Deletes `object` after the current batch of events: handlers that may
  // still be named by an event of this batch die here.
  template <class T>
  void DeleteSoon(std::unique_ptr<T> object) {
    doomed_.emplace_back(object.release(), [](void* p) { delete static_cast<T*>(p); });
  }

  // Runs until Stop. REQUIRES: called once, on the thread that owns the loop.
  void Run();
  // Without Run (tests, fuzzing): takes the loop for the calling thread and
  // runs what is due now (deferred work, due timers, posted functions,
  // deletions), without waiting for sockets.
  void RunPending();
  // Makes Run return after the current iteration; thread-safe.
  void Stop();

  bool InLoopThread() const { return std::this_thread::get_id() == owner_.load(); }
  // The time the current iteration started (cheap; timers use it too).
  Clock::time_point now() const { return now_; }

 private:
  EventLoop(int epoll_fd, int wake_fd);
  void RunPosted();
  void RunTimers();
  void RunDoomed();
  void RunDeferred();
  int NextTimeoutMs() const;

  const int epoll_fd_;
  const int wake_fd_;  // eventfd: Post and Stop wake the loop
  std::atomic<bool> stopping_{false};
  std::atomic<std::thread::id> owner_{};
  Clock::time_point now_ = Clock::now();

  mutable std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // GUARDED_BY(posted_mu_)
  std::atomic<bool> has_posted_{false};          // posted_ may be non-empty

  TimerId next_timer_ = 1;
  std::multimap<Clock::time_point, TimerId> timer_order_;
  std::unordered_map<TimerId, std::function<void()>> timers_;

  std::vector<std::function<void()>> deferred_;
  std::vector<std::function<void()>> deferred_running_;  // the batch RunDeferred runs
  bool running_deferred_ = false;
  std::vector<std::unique_ptr<void, void (*)(void*)>> doomed_;
};

// N loops, each on its own thread. Thread-safe.
class LoopGroup {
 public:
  // REQUIRES: threads >= 1.
  static StatusOr<std::unique_ptr<LoopGroup>> Create(int threads);
  // Stops the loops and joins their threads (if not done yet).
  ~LoopGroup();
  // Stops the loops and joins their threads; the loops stay (objects that
  // belong to them can be destroyed now, on the calling thread).
  void StopAndJoin();

  size_t size() const { return loops_.size(); }
  EventLoop& loop(size_t i) { return *loops_[i]; }
  // Runs `fn(loop)` on every loop and waits until all have run it.
  void RunOnAll(const std::function<void(EventLoop&)>& fn);

 private:
  LoopGroup() = default;
  std::vector<std::unique_ptr<EventLoop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace praefect::http2
