#include "systemd/bridge_connection.h"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace praefect::systemd {
namespace {

std::string SslFailure(const char* what, int ssl_error) {
  unsigned long e = ERR_get_error();
  std::string text = std::string(what) + ": ";
  if (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    text += buf;
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    text += errno != 0 ? std::strerror(errno) : "connection closed";
  } else {
    text += "SSL error " + std::to_string(ssl_error);
  }
  ERR_clear_error();
  return text;
}

}  // namespace

char* ByteQueue::tail() {
  if (begin_ > 0 && (end_ == capacity_ || begin_ >= capacity_ / 2)) {
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return data_.get() + end_;
}

void ByteQueue::Consumed(size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

BridgeConnection::BridgeConnection(int tcp_fd, SSL* ssl, size_t buffer_bytes)
    : tcp_fd_(tcp_fd), ssl_(ssl), buffer_bytes_(buffer_bytes) {}

BridgeConnection::~BridgeConnection() {
  SSL_free(ssl_);
  close(tcp_fd_);
  if (app_fd_ >= 0) close(app_fd_);
}

BridgeConnection::State BridgeConnection::Fail(std::string why) {
  failure_ = std::move(why);
  return state_ = State::kDone;
}

void BridgeConnection::Attach(int app_fd) {
  app_fd_ = app_fd;
  to_app_ = std::make_unique<ByteQueue>(buffer_bytes_);
  to_client_ = std::make_unique<ByteQueue>(buffer_bytes_);
  state_ = State::kOpen;
}

BridgeConnection::State BridgeConnection::Drive() {
  if (state_ == State::kHandshaking) {
    ERR_clear_error();
    int rc = SSL_do_handshake(ssl_);
    if (rc == 1) return state_ = State::kHandshaken;
    int e = SSL_get_error(ssl_, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return state_;
    return Fail(SslFailure("TLS handshake failed", e));
  }
  if (state_ != State::kOpen) return state_;
  for (;;) {
    bool moved = ClientToApp();
    if (state_ == State::kDone) return state_;
    moved |= AppToClient();
    if (state_ == State::kDone) return state_;
    if (app_eof_ && to_client_->empty()) {
      // grpc closed the connection (GOAWAY sent, or the client's EOF seen):
      // say so to the client and finish.
      ERR_clear_error();
      SSL_shutdown(ssl_);
      return state_ = State::kDone;
    }
    if (!moved) return state_;
  }
}

bool BridgeConnection::ClientToApp() {
  bool moved = false;
  while (!client_eof_) {
    char* tail = to_app_->tail();
    if (to_app_->tail_room() == 0) break;
    ERR_clear_error();
    int n = SSL_read(ssl_, tail, static_cast<int>(to_app_->tail_room()));
    if (n > 0) {
      to_app_->Produced(static_cast<size_t>(n));
      moved = true;
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      client_eof_ = true;
      break;
    }
    Fail(SslFailure("reading from the TLS client", e));
    return moved;
  }
  while (!to_app_->empty()) {
    ssize_t n = send(app_fd_, to_app_->data(), to_app_->size(), MSG_NOSIGNAL);
    if (n > 0) {
      to_app_->Consumed(static_cast<size_t>(n));
      moved = true;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    // grpc closed its end: nothing it would still read.
    Fail(std::string("writing to grpc: ") + std::strerror(errno));
    return moved;
  }
  if (client_eof_ && to_app_->empty() && !app_shut_) {
    shutdown(app_fd_, SHUT_WR);
    app_shut_ = true;
  }
  return moved;
}

bool BridgeConnection::AppToClient() {
  bool moved = false;
  while (!app_eof_) {
    char* tail = to_client_->tail();
    if (to_client_->tail_room() == 0) break;
    ssize_t n = recv(app_fd_, tail, to_client_->tail_room(), 0);
    if (n > 0) {
      to_client_->Produced(static_cast<size_t>(n));
      moved = true;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
    app_eof_ = true;  // 0, or ECONNRESET: grpc is done with the connection
  }
  while (!to_client_->empty()) {
    ERR_clear_error();
    int n = SSL_write(ssl_, to_client_->data(), static_cast<int>(to_client_->size()));
    if (n > 0) {
      to_client_->Consumed(static_cast<size_t>(n));
      moved = true;
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    Fail(SslFailure("writing to the TLS client", e));
    return moved;
  }
  return moved;
}

}  // namespace praefect::systemd
