#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "datastore/postgres/connection.h"

namespace praefect::datastore::postgres {

// The one long-lived connection for LISTEN (config's SessionConnection(),
// so the pool may sit behind a transaction-pooling PgBouncer). Remembers
// its channels; when the connection is lost, the next Wait() re-dials
// (with backoff) and LISTENs again. Notifications sent while it was down
// are lost: after reconnected() a caller reloads whatever it caches.
// Not thread-safe: one thread owns it.
class Listener {
 public:
  Listener(std::string conninfo, std::chrono::milliseconds connect_timeout);

  // Dials if needed and LISTENs on `channel` from now on (also after a
  // reconnect). UNAVAILABLE when the database cannot be reached; the channel
  // is still remembered and listened on once it can.
  [[nodiscard]] Status Listen(const std::string& channel, Deadline deadline);

  // Waits up to `timeout` for notifications; an empty vector when none came.
  // UNAVAILABLE when the connection is down and could not be re-established.
  StatusOr<std::vector<Notification>> Wait(std::chrono::milliseconds timeout);

  // True once after each successful re-dial (not after the first dial).
  bool TakeReconnected();

 private:
  [[nodiscard]] Status Ensure(Deadline deadline);

  const std::string conninfo_;
  const std::chrono::milliseconds connect_timeout_;
  std::unique_ptr<Connection> conn_;
  std::vector<std::string> channels_;
  bool ever_connected_ = false;
  bool reconnected_ = false;
  Deadline next_dial_{};
  std::chrono::milliseconds backoff_{0};
  Status last_error_;
};

// The LISTEN connection for [database]: SessionConnection(), i.e.
// [database.session_pooled] with its fallbacks.
std::unique_ptr<Listener> NewListener(const config::Database& db,
                                      std::chrono::milliseconds connect_timeout = std::chrono::seconds(5));

}  // namespace praefect::datastore::postgres
