#include "http2/connection.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace praefect::http2 {
namespace {

// One read per readiness event takes at most this much; a busy connection
// does not starve the others on its loop (epoll is level-triggered: the
// rest is read on the next turn).
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerEvent = 4;
// A read block with less room than this is left to those who keep bytes
// of it; the next read takes a fresh one.
constexpr size_t kMinReadRoom = 16 * 1024;
// iovecs per writev.
constexpr int kWriteVectors = 64;

// Read blocks nobody holds any more, kept for the next read on this thread:
// a connection holds a block only while bytes of it are kept, so an idle
// connection costs none, and a busy loop allocates none.
class SpareBlocks {
 public:
  ~SpareBlocks() {
    for (Block* b : spare_) b->Unref();
  }
  BlockRef Get() {
    if (spare_.empty()) return BlockRef::Take(Block::New(kReadChunk));
    Block* b = spare_.back();
    spare_.pop_back();
    return BlockRef::Take(b);
  }
  // REQUIRES: `block` unique.
  void Put(BlockRef block) {
    if (spare_.size() >= 4) return;  // freed with `block`
    block->Rewind();
    Block* b = block.get();
    b->Ref();
    spare_.push_back(b);
  }

 private:
  std::vector<Block*> spare_;
};

SpareBlocks& Spares() {
  thread_local SpareBlocks spares;
  return spares;
}

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
  if (secure_ != nullptr) secure_->Attach(this);
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
  ciphertext_.clear();
  secure_->TakeCiphertext(&ciphertext_);
  out_.Adopt(std::move(ciphertext_));
}

void Connection::Send(std::string_view bytes) {
  if (closed() || bytes.empty()) return;
  if (secure_ == nullptr) {
    out_.Append(bytes);
  } else if (Status st = secure_->SendPlaintext(bytes); !st.ok()) {
    Close(st);
    return;
  }
  // With TLS the ciphertext is taken once per Flush, not per Send: the
  // layer's buffer is adopted by the queue, not copied.
  if (pending_output() >= kLowWater) above_low_water_ = true;
}

ByteQueue* Connection::output_queue() {
  if (closed() || secure_ != nullptr) return nullptr;
  return &out_;
}

void Connection::Appended() {
  if (pending_output() >= kLowWater) above_low_water_ = true;
}

void Connection::Flush() {
  TakeCiphertext();
  iovec iov[kWriteVectors];
  while (!closed() && !out_.empty()) {
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(out_.Peek(iov, kWriteVectors));
    ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      out_.Drop(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(Unavailable("connection to " + peer_ + " broke while writing: " +
                      (n < 0 ? std::string(std::strerror(errno)) : std::string("no progress"))));
    return;
  }
  if (closed()) return;
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
                  (!out_.empty() || notify_sendable_ ? uint32_t{EPOLLOUT} : 0u);
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
  ReadBlocks();
  // Keep the block only while bytes of it are kept elsewhere (appending
  // after them): otherwise it goes back to the thread's spares.
  if (in_ && in_->unique()) {
    Spares().Put(std::move(in_));
    in_.reset();
  }
}

void Connection::ReadBlocks() {
  for (int i = 0; i < kReadsPerEvent && !closed(); ++i) {
    if (in_ && in_->unique()) in_->Rewind();
    if (!in_ || in_->room() < kMinReadRoom) in_ = Spares().Get();
    BlockRef block = in_;  // alive through the handler, whatever it closes
    const size_t room = block->room();
    ssize_t n = recv(fd_, block->tail(), room, 0);
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
    Slice got(block.get(), block->tail(), static_cast<size_t>(n));
    block->Commit(static_cast<size_t>(n));
    if (secure_ == nullptr) {
      handler_->OnReceived(got);
    } else if (secure_->passes_slices()) {
      // The plaintext is parts of `block`: handed on by reference.
      plain_slices_.clear();
      Status st = secure_->ReceiveSlices(got, &plain_slices_);
      TakeCiphertext();
      if (!st.ok()) {
        Flush();
        Close(st);
        return;
      }
      for (const Slice& part : plain_slices_) {
        handler_->OnReceived(part);
        if (closed()) return;
      }
      if (secure_->peer_closed()) {
        Close(Status::Ok());
        return;
      }
    } else {
      if (Status st = secure_->ReceiveCiphertext(got.view()); !st.ok()) {
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
      if (!plain_.empty()) {
        // The plaintext's buffer becomes a block: its DATA is kept by
        // reference too.
        BlockRef plain = BlockRef::Take(Block::Adopt(std::move(plain_)));
        plain_ = std::string();
        handler_->OnReceived(Slice(plain.get(), plain->data(), plain->used()));
      }
      if (closed()) return;
      if (secure_->peer_closed()) {
        Close(Status::Ok());
        return;
      }
    }
    if (static_cast<size_t>(n) < room) break;
  }
  if (!closed()) Flush();
}

}  // namespace praefect::http2
