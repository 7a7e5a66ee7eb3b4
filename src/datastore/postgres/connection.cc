#include "datastore/postgres/connection.h"

#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>

namespace praefect::datastore::postgres {
namespace {

// libpq's messages end in a newline and continue on tab-indented lines
// ("... failed: No such file or directory\n\tIs the server running ...").
std::string OneLine(std::string_view s) {
  std::string out;
  bool space = false;
  for (char ch : s) {
    if (ch == '\n' || ch == '\t' || ch == '\r' || ch == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += ch;
  }
  return out;
}

int RemainingMs(Deadline deadline) {
  // Rounded up: poll() must not wake before the deadline, or a caller would
  // see "timed out" while its deadline has not passed yet.
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 1000000 ? 1000000 : static_cast<int>(left);
}

// Waits for `events` on `fd`; false when the deadline passed first.
bool PollFd(int fd, short events, Deadline deadline) {
  for (;;) {
    struct pollfd p = {fd, events, 0};
    int ms = RemainingMs(deadline);
    int n = poll(&p, 1, ms);
    if (n > 0) return true;
    if (n == 0 && Clock::now() >= deadline) return false;
    if (n == 0) continue;
    if (errno != EINTR) return true;  // let libpq report the socket's error
  }
}

Status SqlError(const PGresult* res) {
  const char* state_c = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  std::string state = state_c != nullptr ? state_c : "";
  std::string msg = primary != nullptr ? primary : OneLine(PQresultErrorMessage(res));
  std::string text = "database error: " + msg + " (SQLSTATE " + state + ")";
  if (state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03")
    return DatabaseUnavailable(msg);
  if (state == "57014") return Status(StatusCode::kDeadlineExceeded, text);
  if (state == "23505") return Status(StatusCode::kAlreadyExists, text);
  if (state == "40001" || state == "40P01") return Status(StatusCode::kAborted, text);
  return Internal(text);
}

}  // namespace

Status DatabaseUnavailable(std::string_view reason) {
  return Unavailable("database unavailable: " + OneLine(reason) +
                     "; retry once it is reachable again; if this persists, check [database] in the configuration "
                     "and that PostgreSQL (and PgBouncer, when in between) runs");
}

StatusOr<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo, Deadline deadline,
                                                       std::chrono::milliseconds statement_timeout) {
  PGconn* raw = PQconnectStart(conninfo.c_str());
  if (raw == nullptr) return Status(StatusCode::kResourceExhausted, "out of memory for a database connection");
  std::unique_ptr<Connection> conn(new Connection(raw));
  if (PQstatus(raw) == CONNECTION_BAD) return DatabaseUnavailable(PQerrorMessage(raw));
  for (;;) {
    PostgresPollingStatusType st = PQconnectPoll(raw);
    if (st == PGRES_POLLING_OK) break;
    if (st == PGRES_POLLING_FAILED) return DatabaseUnavailable(PQerrorMessage(raw));
    short ev = st == PGRES_POLLING_WRITING ? POLLOUT : POLLIN;
    if (!PollFd(PQsocket(raw), ev, deadline))
      return DatabaseUnavailable("no connection within the deadline (is the host reachable?)");
  }
  // Server notices (and a FATAL arriving between calls) would go to stderr;
  // errors reach the caller through the call that sees them.
  PQsetNoticeProcessor(raw, [](void*, const char*) {}, nullptr);
  if (PQsetnonblocking(raw, 1) != 0) return DatabaseUnavailable(PQerrorMessage(raw));
  if (statement_timeout.count() > 0) {
    auto r = conn->Exec("SELECT set_config('statement_timeout', $1, false)",
                        {std::to_string(statement_timeout.count())}, deadline);
    if (!r.ok()) return r.status();
  }
  return conn;
}

Connection::~Connection() { PQfinish(conn_); }

bool Connection::broken() const { return broken_ || PQstatus(conn_) != CONNECTION_OK; }

bool Connection::IdleAlive() {
  if (broken()) return false;
  // An idle connection has nothing to read unless the server spoke on its
  // own: a notice, a parameter change, or (what this is for) the FATAL
  // error and end of stream of a server that shut down or terminated the
  // session. Read it now rather than send a statement into a dead socket.
  // One read takes what arrived (the FATAL message) and the next one sees
  // the end of the stream, which is what makes libpq call it broken.
  for (int reads = 0; reads < 4; ++reads) {
    struct pollfd p = {PQsocket(conn_), POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) break;
    if (PQconsumeInput(conn_) == 0 || PQstatus(conn_) != CONNECTION_OK) {
      broken_ = true;
      return false;
    }
  }
  return true;
}

Status Connection::LostConnection() {
  broken_ = true;
  return DatabaseUnavailable(PQerrorMessage(conn_));
}

Status Connection::Flush(Deadline deadline) {
  for (;;) {
    int r = PQflush(conn_);
    if (r == 0) return Status::Ok();
    if (r < 0) return LostConnection();
    if (!PollFd(PQsocket(conn_), POLLOUT | POLLIN, deadline)) {
      broken_ = true;
      return DatabaseUnavailable("no room to send the statement before the call's time limit (the server or "
                                 "PgBouncer is not reading: down, overloaded or unreachable?)");
    }
    if (PQconsumeInput(conn_) == 0) return LostConnection();
  }
}

Status Connection::WaitReadable(Deadline deadline) {
  if (!PollFd(PQsocket(conn_), POLLIN, deadline)) {
    // The server may still be working on it; the connection is in an unknown
    // state, so it is dropped (statement_timeout ends the query server-side).
    // UNAVAILABLE, not DEADLINE_EXCEEDED: the time limit is praefect's own,
    // not the client's, and what the client should do is retry later (a
    // PgBouncer whose PostgreSQL is down holds statements like this).
    broken_ = true;
    return DatabaseUnavailable("no answer within the call's time limit (PostgreSQL, or PgBouncer in between, is "
                               "down, overloaded or unreachable?)");
  }
  if (PQconsumeInput(conn_) == 0) return LostConnection();
  return Status::Ok();
}

StatusOr<Rows> Connection::Collect(Deadline deadline) {
  if (Status st = Flush(deadline); !st.ok()) return st;
  Status error;
  Rows rows;
  for (;;) {
    while (PQisBusy(conn_)) {
      if (Status st = WaitReadable(deadline); !st.ok()) return st;
    }
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) break;
    ExecStatusType s = PQresultStatus(res);
    if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
      rows = Rows();
      int nf = PQnfields(res), nt = PQntuples(res);
      for (int c = 0; c < nf; ++c) rows.columns.emplace_back(PQfname(res, c));
      rows.rows.resize(static_cast<size_t>(nt));
      for (int r = 0; r < nt; ++r) {
        auto& row = rows.rows[static_cast<size_t>(r)];
        row.reserve(static_cast<size_t>(nf));
        for (int c = 0; c < nf; ++c) {
          if (PQgetisnull(res, r, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(std::string(PQgetvalue(res, r, c), static_cast<size_t>(PQgetlength(res, r, c))));
          }
        }
      }
      const char* affected = PQcmdTuples(res);
      rows.affected = (affected != nullptr && *affected != '\0') ? std::stoll(affected) : 0;
    } else if (error.ok()) {
      error = s == PGRES_FATAL_ERROR ? SqlError(res) : Internal(std::string("database error: ") + PQresStatus(s));
    }
    PQclear(res);
  }
  if (PQstatus(conn_) != CONNECTION_OK) return LostConnection();
  if (!error.ok()) {
    if (error.code() == StatusCode::kUnavailable) broken_ = true;
    return error;
  }
  return rows;
}

StatusOr<Rows> Connection::Exec(std::string_view sql, const std::vector<Param>& params, Deadline deadline) {
  if (broken()) return DatabaseUnavailable("connection lost");
  std::vector<const char*> values;
  std::vector<int> lengths;
  values.reserve(params.size());
  lengths.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    // libpq reads text-format parameters as C strings: a NUL would end the
    // value early and the statement would act on a different string than
    // the one given (a path "a\0b" would name "a"). PostgreSQL's text
    // cannot hold a NUL at all, so refuse rather than truncate.
    if (p && p->find('\0') != std::string::npos)
      return InvalidArgument("database parameter $" + std::to_string(i + 1) + " contains a NUL byte at offset " +
                             std::to_string(p->find('\0')) +
                             ", which PostgreSQL text cannot store; nothing was written");
    values.push_back(p ? p->c_str() : nullptr);
    lengths.push_back(p ? static_cast<int>(p->size()) : 0);
  }
  std::string q(sql);
  if (PQsendQueryParams(conn_, q.c_str(), static_cast<int>(values.size()), nullptr, values.data(), lengths.data(),
                        nullptr, 0) == 0)
    return LostConnection();
  return Collect(deadline);
}

Status Connection::ExecScript(std::string_view sql, Deadline deadline) {
  if (broken()) return DatabaseUnavailable("connection lost");
  std::string q(sql);
  if (PQsendQuery(conn_, q.c_str()) == 0) return LostConnection();
  auto r = Collect(deadline);
  return r.ok() ? Status::Ok() : r.status();
}

StatusOr<std::vector<Notification>> Connection::WaitNotifications(Deadline deadline) {
  std::vector<Notification> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn_)) {
      out.push_back(Notification{n->relname, n->extra});
      PQfreemem(n);
    }
  };
  if (broken()) return DatabaseUnavailable("connection lost");
  if (PQconsumeInput(conn_) == 0) return LostConnection();
  drain();
  if (!out.empty()) return out;
  if (PollFd(PQsocket(conn_), POLLIN, deadline)) {
    if (PQconsumeInput(conn_) == 0) return LostConnection();
    drain();
  }
  return out;
}

std::string Connection::QuoteIdentifier(std::string_view name) const {
  char* q = PQescapeIdentifier(conn_, name.data(), name.size());
  if (q == nullptr) return "\"\"";
  std::string out(q);
  PQfreemem(q);
  return out;
}

}  // namespace praefect::datastore::postgres
