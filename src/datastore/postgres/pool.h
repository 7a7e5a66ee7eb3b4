#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "datastore/postgres/connection.h"

namespace praefect::datastore::postgres {

struct PoolOptions {
  size_t size = 10;                                    // connections at most
  std::chrono::milliseconds connect_timeout{5000};     // per dial, within the caller's deadline
  std::chrono::milliseconds statement_timeout{30000};  // set on every connection; 0 = server default
  std::chrono::milliseconds min_backoff{100};          // after a failed dial, calls fail fast this long
  std::chrono::milliseconds max_backoff{1000};         // doubling up to this
};

class Pool;

// A connection taken from a Pool; goes back on destruction (or is dropped
// when broken). Must not outlive its pool. Movable, not copyable.
class Lease {
 public:
  Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
  Lease(Lease&&) noexcept = default;
  // Assigning over a lease would drop its connection without telling the pool.
  Lease& operator=(Lease&&) = delete;
  ~Lease();
  Connection* operator->() const { return conn_.get(); }
  Connection& operator*() const { return *conn_; }

 private:
  Pool* pool_;
  std::unique_ptr<Connection> conn_;
};

// A small pool of connections to the main database ([database]). Dials
// lazily, so creating a pool never fails and never blocks. When a dial
// fails, further calls fail fast with the same UNAVAILABLE for a backoff
// period (doubling up to max_backoff) instead of each waiting for a dead
// server; a connection that reports a lost server makes the pool drop its
// idle connections too, which were to the same server. Thread-safe.
class Pool {
 public:
  Pool(std::string conninfo, PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // An idle connection, a new one, or one given back before `deadline`.
  // UNAVAILABLE when the database cannot be reached ("database unavailable:
  // ...") or every connection stays busy until `deadline` ("database busy:
  // ..."): both are for the caller to retry later.
  StatusOr<Lease> Acquire(Deadline deadline);

  // Acquire + Exec + release.
  StatusOr<Rows> Exec(std::string_view sql, const std::vector<Param>& params, Deadline deadline);

  // Connections open (idle or leased); for tests and metrics.
  size_t open_connections() const;

 private:
  friend class Lease;
  void Release(std::unique_ptr<Connection> conn);

  const std::string conninfo_;
  const PoolOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mu_)
  size_t open_ = 0;                                // GUARDED_BY(mu_): idle + leased + dialing
  Deadline next_dial_{};                           // GUARDED_BY(mu_): no dial before this
  std::chrono::milliseconds backoff_{0};           // GUARDED_BY(mu_)
  Status last_dial_error_;                         // GUARDED_BY(mu_)
};

// The pool for [database] (MainConnection()).
std::unique_ptr<Pool> NewPool(const config::Database& db, PoolOptions options = {});

}  // namespace praefect::datastore::postgres
