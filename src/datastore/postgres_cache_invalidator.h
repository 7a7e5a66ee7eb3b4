#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "datastore/postgres/listener.h"
#include "datastore/repository_cache.h"

namespace praefect::datastore {

// Keeps a RepositoryCache in step with PostgreSQL: a thread of its own
// LISTENs on repositories_updates (migration 0002's triggers) and turns each
// notification into RepositoryCache::Invalidate calls; a payload it cannot
// parse flushes the whole cache.
//
// Notifications sent while the LISTEN connection is down are lost, so the
// cache is only trusted while it is up: the constructor disables the cache,
// the first successful LISTEN enables it, a failed Wait disables it again
// (reads go to the database), and a reconnect (the Listener re-dials on its
// own) flushes and re-enables it. Each of these transitions is logged once.
//
// Uses a connection of its own rather than PostgresDatastore's, so the cache
// does not depend on the store's internals; one more session per praefect.
// listening() and notifications() may be called from any thread. The
// destructor stops the thread within `poll` (within `listen_timeout` when
// the first LISTEN is still dialing).
class PostgresCacheInvalidator {
 public:
  struct Options {
    // How long one Wait blocks: bounds the destructor's latency; it does
    // not delay notifications, which wake the wait at once.
    std::chrono::milliseconds poll{200};
    // Bound on the first LISTEN (dial included).
    std::chrono::milliseconds listen_timeout{5000};
    // Called from the invalidator's thread on each transition of the LISTEN
    // connection: true when it is (again) up, false when it went down.
    std::function<void(bool connected)> on_transition;
  };

  // `cache` must outlive this object. `listener` is typically
  // postgres::NewListener(config.database).
  PostgresCacheInvalidator(RepositoryCache* cache, std::unique_ptr<postgres::Listener> listener)
      : PostgresCacheInvalidator(cache, std::move(listener), Options{}) {}
  PostgresCacheInvalidator(RepositoryCache* cache, std::unique_ptr<postgres::Listener> listener, Options options);
  ~PostgresCacheInvalidator();
  PostgresCacheInvalidator(const PostgresCacheInvalidator&) = delete;
  PostgresCacheInvalidator& operator=(const PostgresCacheInvalidator&) = delete;

  // Whether the LISTEN connection is up (and so the cache enabled).
  bool listening() const { return up_.load(std::memory_order_acquire); }
  // Notifications applied so far (for tests).
  uint64_t notifications() const { return notifications_.load(std::memory_order_relaxed); }

 private:
  void Run();
  void Apply(const std::string& payload);
  void Up(bool reconnected);
  void Down(const Status& why);

  RepositoryCache* const cache_;
  const std::unique_ptr<postgres::Listener> listener_;  // only Run's thread touches it
  const Options options_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> up_{false};
  std::atomic<uint64_t> notifications_{0};
  bool ever_up_ = false;       // Run's thread only
  bool down_logged_ = false;   // Run's thread only
  std::thread thread_;         // last: started once everything above is set
};

}  // namespace praefect::datastore
