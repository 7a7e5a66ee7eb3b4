#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/status_or.h"
#include "datastore/postgres/rows.h"

typedef struct pg_conn PGconn;

namespace praefect::datastore::postgres {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// The message of every "cannot reach the database" error, so an operator
// reads the same advice whichever call failed.
Status DatabaseUnavailable(std::string_view reason);

// One notification received on a LISTEN connection.
struct Notification {
  std::string channel;
  std::string payload;
};

// One libpq connection. Every call is bounded by a deadline: libpq runs in
// non-blocking mode and this class polls its socket, so an unreachable or
// hung server costs at most the time left, never more. A connection that
// lost its server, or whose call ran out of time, is broken() and must be
// dropped. Not thread-safe: one user at a time (the pool hands it out).
class Connection {
 public:
  // Dials `conninfo` (a libpq connection string); UNAVAILABLE with libpq's
  // reason when the server cannot be reached by `deadline`. A positive
  // `statement_timeout` is set on the session (set_config, so it also works
  // through PgBouncer, which refuses startup options).
  static StatusOr<std::unique_ptr<Connection>> Open(const std::string& conninfo, Deadline deadline,
                                                    std::chrono::milliseconds statement_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One parameterized statement ($1, $2, ...; PQexecParams semantics, text
  // format). A parameter containing a NUL byte is refused with
  // INVALID_ARGUMENT before anything is sent (libpq would read it as a C
  // string and truncate it). Errors: UNAVAILABLE (connection lost, or no
  // answer by `deadline`; broken() is then true), DEADLINE_EXCEEDED
  // (statement_timeout, the server cancelled the statement), ALREADY_EXISTS
  // (unique violation), ABORTED (serialization failure, deadlock), INTERNAL
  // (any other SQL error); the message has PostgreSQL's text and SQLSTATE.
  StatusOr<Rows> Exec(std::string_view sql, const std::vector<Param>& params, Deadline deadline);
  // Several statements without parameters (simple query protocol), for
  // migration scripts. The result of the last statement is discarded.
  [[nodiscard]] Status ExecScript(std::string_view sql, Deadline deadline);

  bool broken() const;

  // For a connection that sat idle: false (and broken() from then on) when
  // the server closed it meanwhile (a restart, pg_terminate_backend, a
  // PgBouncer restart). Never blocks; sends nothing.
  bool IdleAlive();

  // For LISTEN: waits until the socket is readable or `deadline`, then
  // returns every notification received so far (possibly none).
  StatusOr<std::vector<Notification>> WaitNotifications(Deadline deadline);

  // `name` quoted as an SQL identifier.
  std::string QuoteIdentifier(std::string_view name) const;

 private:
  explicit Connection(PGconn* conn) : conn_(conn) {}
  [[nodiscard]] Status Flush(Deadline deadline);
  [[nodiscard]] Status WaitReadable(Deadline deadline);
  StatusOr<Rows> Collect(Deadline deadline);
  Status LostConnection();

  PGconn* conn_;
  bool broken_ = false;
};

}  // namespace praefect::datastore::postgres
