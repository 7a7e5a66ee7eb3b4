#pragma once

#include <functional>
#include <memory>
#include <string>

#include "http2/connection.h"
#include "http2/event_loop.h"
#include "http2/session.h"

namespace praefect::http2 {

// Joins a Connection and a Session: bytes read go into the session, the
// session's output goes out as the connection takes it (never more than
// about kHighWater queued), and the session's end closes the connection.
// The base of both sides: ServerConnection (clients) and the upstream
// pool's connections (nodes). On its loop only; delete with DeleteSoon
// after Closed() is reported.
class SessionDriver : public Connection::Handler, public Session::Owner {
 public:
  // Bytes queued on the connection above which the session is not asked
  // for more: backpressure reaches the streams' queues, then the windows.
  static constexpr size_t kHighWater = 256 * 1024;

  ~SessionDriver() override;

  // Starts the connection. REQUIRES: session() set.
  [[nodiscard]] Status Start();
  // Produces output now (and flushes it). Never from within the session's
  // callbacks (nghttp2 forbids it): they call OnWantWrite.
  void Produce();
  // Closes the connection once the session's pending output (a GOAWAY) is
  // written; safe from within the session's callbacks.
  void CloseSoon();
  Session* session() { return session_.get(); }
  Connection* connection() { return connection_.get(); }
  EventLoop* loop() const { return loop_; }
  bool closed() const { return closed_; }
  const std::string& peer() const { return connection_->peer(); }

  // Connection::Handler.
  void OnReceived(const Slice& bytes) override;
  void OnSendable() override { Produce(); }
  void OnClosed(const Status& why) override;
  // Session::Owner (OnNewStream and OnGoAway stay with the subclass).
  void OnWantWrite() override;

 protected:
  SessionDriver(EventLoop* loop, std::unique_ptr<Connection> connection);
  void set_session(std::unique_ptr<Session> session) { session_ = std::move(session); }
  // The connection is gone (after the session's streams heard of it).
  virtual void Closed(const Status& why) = 0;

 private:
  EventLoop* const loop_;
  std::unique_ptr<Connection> connection_;
  std::unique_ptr<Session> session_;
  bool produce_scheduled_ = false;
  bool close_soon_ = false;
  bool closed_ = false;
  ByteQueue scratch_;  // TLS: the session's output, before the layer takes it
};

}  // namespace praefect::http2
