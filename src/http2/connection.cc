#include "http2/connection.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace praefect::http2 {
namespace {

// One read per readiness event takes at most this much; a busy connection
// does not starve the others on its loop (epoll is level-triggered: the
// rest is read on the next turn).
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 4;

// Compacts the output queue once the written prefix is large.
constexpr size_t kCompactAt = 256 * 1024;

}  // namespace

Connection::Connection(EventLoop* loop, int fd, std::unique_ptr<SecureLayer> secure, std::string peer)
    : loop_(loop), fd_(fd), secure_(std::move(secure)), peer_(std::move(peer)) {
  int flags = fcntl(fd_, F_GETFL);
  if (flags >= 0) fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
}

Connection::~Connection() {
  if (linger_timer_ != 0) loop_->CancelTimer(linger_timer_);
  if (fd_ >= 0) {
    loop_->Remove(fd_);
    close(fd_);
  }
}

Status Connection::Start(Handler* handler) {
  handler_ = handler;
  notify_sendable_ = true;  // the first OnSendable, once the socket is writable
  interest_ = EPOLLIN | EPOLLRDHUP | EPOLLOUT;
  if (Status st = loop_->Add(fd_, interest_, this); !st.ok()) return st;
  // A TLS client speaks first: its ClientHello is ready before any input.
  TakeCiphertext();
  Flush();
  return Status::Ok();
}

void Connection::TakeCiphertext() {
  if (secure_ == nullptr) return;
  if (out_offset_ > kCompactAt) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  secure_->TakeCiphertext(&out_);
}

void Connection::Send(std::string_view bytes) {
  if (closed() || bytes.empty()) return;
  if (out_offset_ > kCompactAt && out_offset_ * 2 > out_.size()) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  if (secure_ == nullptr) {
    out_.append(bytes);
  } else if (Status st = secure_->SendPlaintext(bytes); !st.ok()) {
    Close(st);
    return;
  }
  // With TLS the ciphertext is taken once per Flush, not per Send: when the
  // queue is empty then, the layer's buffer is swapped in, not copied.
  if (pending_output() >= kLowWater) above_low_water_ = true;
}

std::string* Connection::output_queue() {
  if (closed() || secure_ != nullptr) return nullptr;
  if (out_offset_ > kCompactAt && out_offset_ * 2 > out_.size()) {
    out_.erase(0, out_offset_);
    out_offset_ = 0;
  }
  return &out_;
}

void Connection::Appended() {
  if (pending_output() >= kLowWater) above_low_water_ = true;
}

void Connection::Flush() {
  TakeCiphertext();
  while (!closed() && out_.size() > out_offset_) {
    ssize_t n = send(fd_, out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
    if (n > 0) {
      out_offset_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(Unavailable("connection to " + peer_ + " broke while writing: " +
                      (n < 0 ? std::string(std::strerror(errno)) : std::string("no progress"))));
    return;
  }
  if (closed()) return;
  if (out_.size() == out_offset_) {
    out_.clear();
    out_offset_ = 0;
  }
  if (pending_output() == 0) {
    if (close_after_flush_) {
      Close(Status::Ok());
      return;
    }
  }
  if (above_low_water_ && pending_output() < kLowWater) {
    // Reported from OnIoEvent, never from inside the handler's own Flush:
    // EPOLLOUT (level-triggered) fires at once on a writable socket.
    above_low_water_ = false;
    notify_sendable_ = true;
  }
  UpdateInterest();
}

void Connection::UpdateInterest() {
  // EPOLLOUT only for bytes the socket can take: plaintext a TLS layer holds
  // until its handshake is done waits for input, not for writability.
  uint32_t want = (reading_paused_ ? 0u : uint32_t{EPOLLIN | EPOLLRDHUP}) |
                  (out_.size() > out_offset_ || notify_sendable_ ? uint32_t{EPOLLOUT} : 0u);
  if (want == interest_) return;
  interest_ = want;
  if (Status st = loop_->Modify(fd_, interest_, this); !st.ok()) Close(st);
}

void Connection::PauseReading(bool paused) {
  if (closed() || reading_paused_ == paused) return;
  reading_paused_ = paused;
  UpdateInterest();
}

void Connection::CloseAfterFlush(std::chrono::milliseconds linger) {
  if (closed()) return;
  close_after_flush_ = true;
  Flush();  // closes when everything is written
  if (closed()) return;
  linger_timer_ = loop_->AddTimer(linger, [this] {
    linger_timer_ = 0;
    Close(DeadlineExceeded("connection to " + peer_ + " closed before its last bytes were written: the peer does "
                           "not read"));
  });
}

void Connection::Close(const Status& why) {
  if (closed()) return;
  loop_->Remove(fd_);
  ::close(fd_);
  fd_ = -1;
  if (linger_timer_ != 0) {
    loop_->CancelTimer(linger_timer_);
    linger_timer_ = 0;
  }
  Handler* handler = handler_;
  handler_ = nullptr;
  if (handler != nullptr) handler->OnClosed(why);
}

void Connection::OnIoEvent(uint32_t events) {
  if (closed()) return;
  if (events & EPOLLOUT) {
    Flush();
    if (closed()) return;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    if (!reading_paused_ || (events & (EPOLLHUP | EPOLLERR))) ReadSome();
    if (closed()) return;
  }
  if (notify_sendable_ && pending_output() < kLowWater) {
    notify_sendable_ = false;
    if (handler_ != nullptr) handler_->OnSendable();
    if (!closed()) UpdateInterest();
  }
}

void Connection::ReadSome() {
  char buf[kReadChunk];
  for (int i = 0; i < kReadsPerEvent && !closed(); ++i) {
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) {
      Close(Unavailable("connection to " + peer_ + " broke while reading: " + std::strerror(errno)));
      return;
    }
    if (n == 0) {
      // The peer finished sending. With TLS, what is still buffered was
      // delivered with the last read; the layer says whether this end was
      // orderly.
      Close(secure_ == nullptr ? Status::Ok() : secure_->ReceiveEof());
      return;
    }
    std::string_view got(buf, static_cast<size_t>(n));
    if (secure_ == nullptr) {
      handler_->OnReceived(got);
    } else {
      if (Status st = secure_->ReceiveCiphertext(got); !st.ok()) {
        Close(st);
        return;
      }
      plain_.clear();
      Status st = secure_->ReadPlaintext(&plain_);
      // Handshake records and alerts go out even when no plaintext came.
      TakeCiphertext();
      if (!st.ok()) {
        Flush();  // a fatal alert, so the peer learns why
        Close(st);
        return;
      }
      if (!plain_.empty()) handler_->OnReceived(plain_);
      if (closed()) return;
      if (secure_->peer_closed()) {
        Close(Status::Ok());
        return;
      }
    }
    if (static_cast<size_t>(n) < sizeof buf) break;
  }
  if (!closed()) Flush();
}

}  // namespace praefect::http2
