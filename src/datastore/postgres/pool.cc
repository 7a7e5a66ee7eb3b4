#include "datastore/postgres/pool.h"

#include <algorithm>

#include "datastore/postgres/conn_string.h"

namespace praefect::datastore::postgres {

Lease::~Lease() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_));
}

namespace {
PoolOptions AtLeastOne(PoolOptions o) {
  if (o.size == 0) o.size = 1;
  return o;
}
}  // namespace

Pool::Pool(std::string conninfo, PoolOptions options)
    : conninfo_(std::move(conninfo)), options_(AtLeastOne(options)) {}

Pool::~Pool() = default;

size_t Pool::open_connections() const {
  std::lock_guard lock(mu_);
  return open_;
}

void Pool::Release(std::unique_ptr<Connection> conn) {
  std::lock_guard lock(mu_);
  if (conn->broken()) {
    // The server went away or the call was cut off: the idle connections to
    // the same server are most likely dead as well.
    open_ -= 1 + idle_.size();
    idle_.clear();
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

StatusOr<Lease> Pool::Acquire(Deadline deadline) {
  std::unique_lock lock(mu_);
  for (;;) {
    while (!idle_.empty()) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      // A restart of the server (or of a PgBouncer) closes every idle
      // connection: found here, the first statement after it does not fail.
      if (c->IdleAlive()) return Lease(this, std::move(c));
      --open_;
    }
    if (open_ < options_.size) {
      if (Clock::now() < next_dial_) return last_dial_error_;
      ++open_;
      lock.unlock();
      Deadline dial_deadline = std::min(deadline, Clock::now() + options_.connect_timeout);
      auto conn = Connection::Open(conninfo_, dial_deadline, options_.statement_timeout);
      lock.lock();
      if (conn.ok()) {
        backoff_ = std::chrono::milliseconds(0);
        return Lease(this, std::move(conn).value());
      }
      --open_;
      cv_.notify_one();
      // A dial cut short by this caller's own deadline says nothing about the
      // database: no backoff, or one hurried caller would fail everyone's calls.
      if (dial_deadline == deadline && Clock::now() >= deadline) return conn.status();
      backoff_ = std::clamp(backoff_ * 2, options_.min_backoff, options_.max_backoff);
      next_dial_ = Clock::now() + backoff_;
      last_dial_error_ = conn.status();
      return conn.status();
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() && open_ >= options_.size)
      return Unavailable("database busy: all " + std::to_string(options_.size) +
                         " of praefect's connections to it stayed in use until the call's time limit (slow "
                         "statements, or a PgBouncer holding them while its PostgreSQL is down); retry in a few "
                         "seconds");
  }
}

StatusOr<Rows> Pool::Exec(std::string_view sql, const std::vector<Param>& params, Deadline deadline) {
  auto lease = Acquire(deadline);
  if (!lease.ok()) return lease.status();
  return (*lease)->Exec(sql, params, deadline);
}

std::unique_ptr<Pool> NewPool(const config::Database& db, PoolOptions options) {
  return std::make_unique<Pool>(ConnString(db.MainConnection(), options.connect_timeout), options);
}

}  // namespace praefect::datastore::postgres
