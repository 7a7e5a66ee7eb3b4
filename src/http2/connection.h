#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "http2/buffer.h"
#include "http2/event_loop.h"

namespace praefect::http2 {

// What a Connection puts between its socket and its handler when the
// connection is encrypted: TLS as a filter over bytes (implemented over
// OpenSSL memory BIOs; see tls_filter.h). Used on one loop only.
class SecureLayer {
 public:
  virtual ~SecureLayer() = default;
  // Bytes read from the socket.
  [[nodiscard]] virtual Status ReceiveCiphertext(std::string_view bytes) = 0;
  // Appends what has been decrypted so far (drives the handshake).
  [[nodiscard]] virtual Status ReadPlaintext(std::string* out) = 0;
  // Queues plaintext for the peer (held until the handshake is done).
  [[nodiscard]] virtual Status SendPlaintext(std::string_view bytes) = 0;
  // Appends the ciphertext ready for the socket.
  virtual void TakeCiphertext(std::string* out) = 0;
  // The socket reached its end: OK when that is an orderly end here (after
  // close_notify, or a client that went away), else why not (a server that
  // closed during the handshake).
  [[nodiscard]] virtual Status ReceiveEof() = 0;
  // Plaintext and ciphertext held inside the layer, not yet taken.
  virtual size_t buffered() const = 0;
  // The peer ended the TLS session (close_notify or end of stream).
  virtual bool peer_closed() const = 0;
  virtual bool handshake_done() const = 0;
  // The protocol ALPN agreed on ("h2"), or "".
  virtual std::string_view alpn() const = 0;
  // The connection the layer is in, once it starts: a layer that makes
  // output outside the connection's own calls (a backchannel's streams)
  // flushes it through this.
  virtual void Attach(class Connection* connection) { (void)connection; }
  // A layer that frames rather than transforms (the yamux backchannel) can
  // hand the plaintext through without a copy: ReceiveSlices takes the
  // bytes read (in a block the handler may keep references to) and appends
  // the plaintext in it, in order, as parts of that block. Only called when
  // passes_slices(); such a layer still answers ReadPlaintext (empty).
  virtual bool passes_slices() const { return false; }
  [[nodiscard]] virtual Status ReceiveSlices(const class Slice& bytes, std::vector<class Slice>* plain) {
    (void)bytes;
    (void)plain;
    return Status::Ok();
  }
};

// One connected stream socket (TCP or unix), non-blocking, driven by one
// EventLoop, optionally encrypted by a SecureLayer. It reads what the peer
// sends and hands the plaintext to its Handler, and writes what the handler
// sends; output is queued in memory and written as the socket takes it.
// Backpressure is the handler's: it asks pending_output() before producing
// more and is told OnSendable() when the queue has drained.
//
// Not thread-safe: every call on the loop's thread. Delete it with
// EventLoop::DeleteSoon (or on the loop after it is closed).
class Connection final : public IoHandler {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    // Plaintext from the peer, in a block the handler may keep references
    // to (Slice::block).
    virtual void OnReceived(const Slice& bytes) = 0;
    // The output queue drained below kLowWater after having reached it, or
    // the connection became writable for the first time. Never called from
    // within the handler's own Send or Flush.
    virtual void OnSendable() = 0;
    // The connection is closed and will call nothing more. `why` is OK for
    // an orderly end of stream by the peer or by Close(Ok).
    virtual void OnClosed(const Status& why) = 0;
  };

  // Output queue sizes around which OnSendable is reported.
  static constexpr size_t kLowWater = 64 * 1024;

  // Takes `fd` (connected, any blocking mode; made non-blocking here).
  // `peer` names the other end in messages ("10.0.0.5:51234", "unix:...").
  Connection(EventLoop* loop, int fd, std::unique_ptr<SecureLayer> secure, std::string peer);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts watching the socket. REQUIRES: `handler` outlives the connection
  // or its OnClosed, whichever comes first.
  [[nodiscard]] Status Start(Handler* handler);

  // Queues plaintext for the peer; written by Flush (or when the socket
  // becomes writable). Ignored once closed.
  void Send(std::string_view bytes);
  // A plain connection's output queue itself, to append to directly (by
  // reference, where Send copies); nullptr with TLS, whose layer must see
  // the bytes. Call Appended after appending.
  ByteQueue* output_queue();
  void Appended();
  // Writes as much queued output as the socket takes now.
  void Flush();
  // Bytes queued and not yet written (after TLS), and what the secure
  // layer still holds.
  size_t pending_output() const { return out_.size() + (secure_ ? secure_->buffered() : 0); }

  // Stops (or resumes) reading from the socket.
  void PauseReading(bool paused);
  // Closes once everything queued is written (at most `linger` later).
  void CloseAfterFlush(std::chrono::milliseconds linger = std::chrono::milliseconds(5000));
  // Closes now; the handler hears OnClosed(why) (once).
  void Close(const Status& why);

  bool closed() const { return fd_ < 0; }
  const std::string& peer() const { return peer_; }
  const SecureLayer* secure() const { return secure_.get(); }
  EventLoop* loop() const { return loop_; }

  void OnIoEvent(uint32_t events) override;

 private:
  void ReadSome();
  void ReadBlocks();
  void UpdateInterest();
  void TakeCiphertext();

  EventLoop* const loop_;
  int fd_;
  std::unique_ptr<SecureLayer> secure_;
  const std::string peer_;
  Handler* handler_ = nullptr;
  ByteQueue out_;            // queued bytes for the socket (ciphertext with TLS)
  std::string ciphertext_;   // scratch: what the secure layer hands over
  BlockRef in_;              // the block reads go into, while bytes of it are kept
  bool above_low_water_ = false;  // the queue reached kLowWater since the last OnSendable
  bool notify_sendable_ = false;   // OnSendable is due on the next writable event
  bool reading_paused_ = false;
  bool close_after_flush_ = false;
  uint32_t interest_ = 0;
  EventLoop::TimerId linger_timer_ = 0;
  std::string plain_;        // scratch for decrypted input
  std::vector<Slice> plain_slices_;  // scratch for a layer's in-place plaintext
};

}  // namespace praefect::http2
