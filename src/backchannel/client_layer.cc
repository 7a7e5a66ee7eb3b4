#include "backchannel/client_layer.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace praefect::backchannel {
namespace {

// What a backchannel stream may hold toward the server that it has not
// taken: votes are a few hundred bytes, so a node sending more than this
// unread is misbehaving; its stream is reset.
constexpr size_t kMaxHeld = 1024 * 1024;
constexpr size_t kReadChunk = 16 * 1024;

}  // namespace

// One stream the node opened, joined to one end of a socketpair whose other
// end the backchannel Server serves: node → stream → fd, fd → stream → node.
class ClientLayer::Bridge final : public http2::IoHandler {
 public:
  Bridge(ClientLayer* layer, http2::EventLoop* loop, uint32_t id, int fd)
      : layer_(layer), loop_(loop), id_(id), fd_(fd) {}
  ~Bridge() override { Close(); }

  Status Start() { return loop_->Add(fd_, EPOLLIN | EPOLLRDHUP, this); }

  // Bytes the node sent on the stream.
  bool Deliver(std::string_view bytes) {
    if (to_fd_.size() + bytes.size() > kMaxHeld) return false;
    to_fd_.append(bytes);
    WriteOut();
    return true;
  }
  // The node half-closed the stream: the server reads the end once the
  // bytes before it are written.
  void PeerClosed() {
    peer_closed_ = true;
    WriteOut();
  }
  // The stream's window opened again: move what waits (inside the
  // session's Receive: the Connection writes the output afterwards).
  void Writable() { MoveToStream(); }

  void OnIoEvent(uint32_t events) override {
    if (fd_ < 0) return;
    if (events & EPOLLOUT) WriteOut();
    if (fd_ >= 0 && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) ReadIn();
    if (fd_ >= 0 && from_fd_.empty() && fd_eof_ && (peer_closed_ && to_fd_.empty())) Finish();
    layer_->Flush();
  }

 private:
  void ReadIn() {
    while (fd_ >= 0 && !fd_eof_ && from_fd_.size() < kMaxHeld) {
      char buf[kReadChunk];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {
        fd_eof_ = true;
        break;
      }
      from_fd_.append(buf, static_cast<size_t>(n));
    }
    MoveToStream();
    UpdateInterest();
  }

  void MoveToStream() {
    if (!from_fd_.empty()) {
      const size_t took = layer_->WriteStream(id_, from_fd_);
      from_fd_.erase(0, took);
    }
    if (from_fd_.empty() && fd_eof_ && !fin_sent_) {
      fin_sent_ = true;
      layer_->CloseStream(id_);
    }
  }

  void WriteOut() {
    while (fd_ >= 0 && !to_fd_.empty()) {
      ssize_t n = ::write(fd_, to_fd_.data(), to_fd_.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) {  // the server closed its end
        to_fd_.clear();
        break;
      }
      to_fd_.erase(0, static_cast<size_t>(n));
    }
    if (fd_ >= 0 && to_fd_.empty() && peer_closed_ && !write_shut_) {
      write_shut_ = true;
      ::shutdown(fd_, SHUT_WR);
    }
    UpdateInterest();
  }

  void UpdateInterest() {
    if (fd_ < 0) return;
    const uint32_t want = (fd_eof_ ? 0u : uint32_t{EPOLLIN | EPOLLRDHUP}) | (to_fd_.empty() ? 0u : uint32_t{EPOLLOUT});
    if (want == interest_) return;
    interest_ = want;
    (void)loop_->Modify(fd_, want, this);
  }

  void Finish() {
    Close();
    layer_->Forget(id_);  // deletes this
  }

  void Close() {
    if (fd_ < 0) return;
    loop_->Remove(fd_);
    ::close(fd_);
    fd_ = -1;
  }

  ClientLayer* const layer_;
  http2::EventLoop* const loop_;
  const uint32_t id_;
  int fd_;
  uint32_t interest_ = EPOLLIN | EPOLLRDHUP;
  std::string to_fd_;    // from the node, for the server
  std::string from_fd_;  // from the server, beyond the stream's window
  bool fd_eof_ = false;
  bool fin_sent_ = false;
  bool peer_closed_ = false;
  bool write_shut_ = false;
};

ClientLayer::ClientLayer(Server* server, std::unique_ptr<yamux::Session> session)
    : server_(server), session_(std::move(session)) {}

StatusOr<std::unique_ptr<ClientLayer>> ClientLayer::Create(Server* server, yamux::SessionOptions options) {
  options.role = yamux::Role::kClient;
  std::unique_ptr<ClientLayer> layer(new ClientLayer(server, nullptr));
  auto session = yamux::Session::Create(std::move(options), layer.get());
  if (!session.ok()) return session.status();
  layer->session_ = std::move(*session);
  auto main = layer->session_->Open();
  if (!main.ok()) return main.status();
  layer->main_ = *main;
  return layer;
}

ClientLayer::~ClientLayer() { bridges_.clear(); }

Status ClientLayer::ReceiveCiphertext(std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (Status st = session_->Receive(bytes); !st.ok() && error_.ok()) error_ = st;
  Pump();
  return error_;
}

Status ClientLayer::ReceiveSlices(const http2::Slice& bytes, std::vector<http2::Slice>* plain) {
  if (!error_.ok()) return error_;
  in_place_ = &bytes;
  in_place_out_ = plain;
  if (Status st = session_->Receive(bytes.view()); !st.ok() && error_.ok()) error_ = st;
  in_place_ = nullptr;
  in_place_out_ = nullptr;
  Pump();
  return error_;
}

Status ClientLayer::ReadPlaintext(std::string* out) {
  // The Connection asks with an empty string: it takes the buffer whole.
  if (out->empty()) {
    out->swap(plain_);
  } else {
    out->append(plain_);
  }
  plain_.clear();
  return error_;
}

Status ClientLayer::SendPlaintext(std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (pending_.empty()) {
    // Straight into a Data frame as far as the stream's window goes; only
    // what it cannot take yet waits in pending_.
    auto took = session_->Write(main_, bytes);
    if (!took.ok()) {
      if (error_.ok()) error_ = took.status();
      return error_;
    }
    bytes.remove_prefix(*took);
    if (bytes.empty()) return error_;
  }
  pending_.append(bytes);
  Pump();
  return error_;
}

void ClientLayer::TakeCiphertext(std::string* out) {
  if (!magic_sent_) {
    magic_sent_ = true;
    out->append(kMagic);
  }
  session_->TakeOutput(out);
}

Status ClientLayer::ReceiveEof() {
  (void)session_->ReceiveEof();
  bridges_.clear();
  // The node closed the connection: an orderly end when praefect's stream
  // had nothing in flight, as for a plain connection.
  return Status::Ok();
}

size_t ClientLayer::buffered() const { return plain_.size() + pending_.size() + session_->output_size(); }

void ClientLayer::Pump() {
  if (pending_.empty() || !error_.ok()) return;
  auto took = session_->Write(main_, pending_);
  if (!took.ok()) {
    if (error_.ok()) error_ = took.status();
    return;
  }
  pending_.erase(0, *took);
}

size_t ClientLayer::WriteStream(uint32_t id, std::string_view bytes) {
  auto took = session_->Write(id, bytes);
  return took.ok() ? *took : bytes.size();  // a stream that is gone takes (drops) everything
}

void ClientLayer::CloseStream(uint32_t id) { (void)session_->Close(id); }

void ClientLayer::ResetStream(uint32_t id) { (void)session_->Reset(id); }

void ClientLayer::Flush() {
  // Output made outside the Connection's own calls (a vote's answer).
  if (connection_ != nullptr && session_->output_size() > 0) connection_->Flush();
}

void ClientLayer::Forget(uint32_t id) {
  auto it = bridges_.find(id);
  if (it == bridges_.end()) return;
  // Deleted after the bridge's own call returns.
  if (connection_ != nullptr) {
    connection_->loop()->DeleteSoon(std::move(it->second));
  }
  bridges_.erase(it);
}

void ClientLayer::OnStreamOpened(uint32_t id) {
  if (connection_ == nullptr) {
    (void)session_->Reset(id);
    return;
  }
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    (void)session_->Reset(id);
    return;
  }
  auto bridge = std::make_unique<Bridge>(this, connection_->loop(), id, fds[0]);
  if (!bridge->Start().ok() || !session_->Accept(id).ok()) {
    ::close(fds[1]);
    (void)session_->Reset(id);
    return;
  }
  bridges_[id] = std::move(bridge);
  server_->Adopt(fds[1]);
}

void ClientLayer::OnData(uint32_t id, std::string_view bytes) {
  if (id == main_) {
    // yamux parses in place: a Data frame's payload is a part of the bytes
    // ReceiveSlices was given, so it goes on by reference.
    if (in_place_ != nullptr && bytes.data() >= in_place_->data() &&
        bytes.data() + bytes.size() <= in_place_->data() + in_place_->size()) {
      in_place_out_->push_back(http2::Slice(in_place_->block(), bytes.data(), bytes.size()));
    } else {
      plain_.append(bytes);
    }
    (void)session_->Consume(id, bytes.size());
    return;
  }
  auto it = bridges_.find(id);
  if (it == bridges_.end() || !it->second->Deliver(bytes)) {
    (void)session_->Reset(id);
    if (it != bridges_.end()) Forget(id);
    return;
  }
  (void)session_->Consume(id, bytes.size());
}

void ClientLayer::OnPeerClosed(uint32_t id) {
  if (id == main_) {
    main_closed_ = true;
    return;
  }
  if (auto it = bridges_.find(id); it != bridges_.end()) it->second->PeerClosed();
}

void ClientLayer::OnStreamReset(uint32_t id) {
  if (id == main_) {
    main_closed_ = true;
    if (error_.ok()) error_ = Unavailable("the node reset praefect's stream on its backchannel connection");
    return;
  }
  Forget(id);
}

void ClientLayer::OnWritable(uint32_t id) {
  if (id == main_) {
    Pump();
    return;
  }
  if (auto it = bridges_.find(id); it != bridges_.end()) it->second->Writable();
}

void ClientLayer::OnGoAway(uint32_t) {}

void ClientLayer::OnError(const Status& error) {
  if (error_.ok()) error_ = error;
}

}  // namespace praefect::backchannel
