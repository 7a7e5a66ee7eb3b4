#pragma once

// Internal to src/systemd/: one connection of the TLS bridge.

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <string>

namespace praefect::systemd {

// A fixed-capacity byte queue: what one side produced and the other has not
// taken yet. Its capacity bounds the memory a connection holds per direction.
class ByteQueue {
 public:
  explicit ByteQueue(size_t capacity) : data_(new char[capacity]), capacity_(capacity) {}
  bool empty() const { return begin_ == end_; }
  const char* data() const { return data_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  // Where the next bytes go, compacting first when the tail is short.
  char* tail();
  // Contiguous room at tail(); 0 when full.
  size_t tail_room() const { return capacity_ - end_; }
  void Produced(size_t n) { end_ += n; }
  void Consumed(size_t n);

 private:
  std::unique_ptr<char[]> data_;
  const size_t capacity_;
  size_t begin_ = 0, end_ = 0;
};

// The TLS handshake on an accepted TCP connection, then the copy between
// that TLS stream and `app`, a socketpair end whose peer grpc serves as a
// plaintext HTTP/2 connection. Non-blocking throughout: Drive() does what it
// can and returns; the owner calls it again when either descriptor is
// ready (edge-triggered is enough: Drive stops only on EAGAIN, on OpenSSL's
// WANT_READ/WANT_WRITE, which come from an EAGAIN, or on a full queue, which
// only the other descriptor's progress empties). Not thread-safe: owned and
// driven by one bridge loop thread.
class BridgeConnection {
 public:
  enum class State {
    kHandshaking,  // Drive again when tcp_fd() is ready
    kHandshaken,   // the owner attaches the grpc side: Attach(), then Drive
    kOpen,         // Drive again when tcp_fd() or app_fd() is ready
    kDone,         // both sides closed, or an error (failure() says which)
  };

  // Takes ownership of `tcp_fd` (non-blocking) and `ssl` (accept state,
  // already bound to tcp_fd).
  BridgeConnection(int tcp_fd, SSL* ssl, size_t buffer_bytes);
  ~BridgeConnection();
  BridgeConnection(const BridgeConnection&) = delete;
  BridgeConnection& operator=(const BridgeConnection&) = delete;

  State Drive();
  // REQUIRES: state kHandshaken. Takes ownership of `app_fd` (non-blocking).
  void Attach(int app_fd);

  int tcp_fd() const { return tcp_fd_; }
  int app_fd() const { return app_fd_; }
  State state() const { return state_; }
  const std::string& failure() const { return failure_; }

 private:
  State Fail(std::string why);
  // One pass of each direction; true when any byte moved.
  bool ClientToApp();
  bool AppToClient();

  const int tcp_fd_;
  SSL* const ssl_;
  const size_t buffer_bytes_;
  int app_fd_ = -1;
  State state_ = State::kHandshaking;
  std::string failure_;
  // Allocated once the handshake is done: a connection that never completes
  // one costs only OpenSSL's state.
  std::unique_ptr<ByteQueue> to_app_, to_client_;
  bool client_eof_ = false, app_shut_ = false, app_eof_ = false;
};

}  // namespace praefect::systemd
