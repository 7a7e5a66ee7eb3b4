#include "http2/session_driver.h"

#include "log/log.h"

namespace praefect::http2 {

SessionDriver::SessionDriver(EventLoop* loop, std::unique_ptr<Connection> connection)
    : loop_(loop), connection_(std::move(connection)) {}

SessionDriver::~SessionDriver() = default;

Status SessionDriver::Start() {
  if (Status st = connection_->Start(this); !st.ok()) return st;
  OnWantWrite();  // the connection preface and SETTINGS
  return Status::Ok();
}

void SessionDriver::OnWantWrite() {
  if (produce_scheduled_ || closed_) return;
  produce_scheduled_ = true;
  loop_->Defer([this] {
    produce_scheduled_ = false;
    Produce();
  });
}

void SessionDriver::Produce() {
  if (closed_ || connection_->closed()) return;
  bool alive = true;
  while (connection_->pending_output() < kHighWater) {
    const size_t room = kHighWater - connection_->pending_output();
    if (ByteQueue* queue = connection_->output_queue()) {
      // Plain: frames go straight into the connection's queue.
      const size_t before = queue->size();
      alive = session_->Produce(queue, room);
      connection_->Appended();
      if (queue->size() == before || !session_->stopped_by_budget()) break;
    } else {
      alive = session_->Produce(&scratch_, room);
      if (scratch_.empty()) break;
      const bool more = session_->stopped_by_budget();
      // The layer copies (encrypts) what it is given, segment by segment.
      iovec iov[16];
      while (!scratch_.empty()) {
        const int n = scratch_.Peek(iov, 16);
        size_t taken = 0;
        for (int i = 0; i < n; ++i) {
          connection_->Send(std::string_view(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len));
          taken += iov[i].iov_len;
        }
        scratch_.Drop(taken);
      }
      if (!more) break;
    }
  }
  connection_->Flush();
  if ((!alive || close_soon_) && !connection_->closed()) connection_->CloseAfterFlush();
}

void SessionDriver::CloseSoon() {
  close_soon_ = true;
  OnWantWrite();
}

void SessionDriver::OnReceived(const Slice& bytes) {
  if (closed_) return;
  if (Status st = session_->Receive(bytes); !st.ok()) {
    // A protocol error or a flood: nghttp2 queued a GOAWAY saying why; it
    // goes out, then the connection closes.
    log::Warn("closing an HTTP/2 connection: the peer broke the protocol",
              {{"peer", connection_->peer()}, {"error", st.message()}});
    Produce();
    if (!connection_->closed()) connection_->CloseAfterFlush();
  }
}

void SessionDriver::OnClosed(const Status& why) {
  if (closed_) return;
  closed_ = true;
  // The streams hear of it (OnClosed with CANCEL) when the session dies,
  // after this batch: the close may come from within one of the session's
  // own callbacks, which must not see it destroyed.
  loop_->DeleteSoon(std::move(session_));
  Closed(why);
}

}  // namespace praefect::http2
