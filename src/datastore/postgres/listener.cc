#include "datastore/postgres/listener.h"

#include <algorithm>
#include <thread>

#include "datastore/postgres/conn_string.h"

namespace praefect::datastore::postgres {

Listener::Listener(std::string conninfo, std::chrono::milliseconds connect_timeout)
    : conninfo_(std::move(conninfo)), connect_timeout_(connect_timeout) {}

Status Listener::Ensure(Deadline deadline) {
  if (conn_ != nullptr && !conn_->broken()) return Status::Ok();
  conn_.reset();
  if (Clock::now() < next_dial_) return last_error_;
  auto c = Connection::Open(conninfo_, std::min(deadline, Clock::now() + connect_timeout_),
                            std::chrono::milliseconds(0));
  Status st = c.ok() ? Status::Ok() : c.status();
  if (st.ok()) {
    for (const auto& ch : channels_) {
      auto r = (*c)->Exec("LISTEN " + (*c)->QuoteIdentifier(ch), {}, deadline);
      if (!r.ok()) {
        st = r.status();
        break;
      }
    }
  }
  if (!st.ok()) {
    backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(100), std::chrono::milliseconds(5000));
    next_dial_ = Clock::now() + backoff_;
    last_error_ = st;
    return st;
  }
  backoff_ = std::chrono::milliseconds(0);
  conn_ = std::move(c).value();
  if (ever_connected_) reconnected_ = true;
  ever_connected_ = true;
  return Status::Ok();
}

Status Listener::Listen(const std::string& channel, Deadline deadline) {
  if (std::find(channels_.begin(), channels_.end(), channel) == channels_.end()) channels_.push_back(channel);
  bool fresh = conn_ == nullptr || conn_->broken();
  if (Status st = Ensure(deadline); !st.ok()) return st;
  if (!fresh) {  // a fresh connection LISTENed on every channel already
    auto r = conn_->Exec("LISTEN " + conn_->QuoteIdentifier(channel), {}, deadline);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

StatusOr<std::vector<Notification>> Listener::Wait(std::chrono::milliseconds timeout) {
  Deadline deadline = Clock::now() + timeout;
  if (Status st = Ensure(deadline); !st.ok()) {
    // Down: spend the caller's time rather than spin, then report.
    std::this_thread::sleep_until(std::min(deadline, next_dial_));
    return st;
  }
  return conn_->WaitNotifications(deadline);
}

bool Listener::TakeReconnected() {
  bool r = reconnected_;
  reconnected_ = false;
  return r;
}

std::unique_ptr<Listener> NewListener(const config::Database& db, std::chrono::milliseconds connect_timeout) {
  return std::make_unique<Listener>(ConnString(db.SessionConnection(), connect_timeout), connect_timeout);
}

}  // namespace praefect::datastore::postgres
