#include "yamux_bridge.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace praefect::storagenode {
namespace {

constexpr size_t kChunk = 64 * 1024;
// How long OpenStream waits for the bridge's thread (which itself waits for
// the peer to acknowledge earlier opens beyond the accept backlog).
constexpr auto kOpenTimeout = std::chrono::seconds(30);

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

YamuxBridge::YamuxBridge(int fd, Options options)
    : fd_(fd), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)), options_(std::move(options)) {
  out_ = options_.preamble;
}

StatusOr<std::unique_ptr<YamuxBridge>> YamuxBridge::Start(int fd, Options options) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    Status st = Internal(Errno("yamux bridge: making the connection non-blocking"));
    close(fd);
    return st;
  }
  std::unique_ptr<YamuxBridge> bridge(new YamuxBridge(fd, std::move(options)));
  if (bridge->wake_fd_ < 0) {
    close(fd);
    return Internal(Errno("yamux bridge: eventfd"));
  }
  auto session = yamux::Session::Create(bridge->options_.session, bridge.get());
  if (!session.ok()) {
    close(fd);
    return session.status();
  }
  bridge->session_ = std::move(*session);
  bridge->thread_ = std::thread([b = bridge.get()] { b->Run(); });
  return bridge;
}

YamuxBridge::~YamuxBridge() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void YamuxBridge::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

Status YamuxBridge::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

StatusOr<int> YamuxBridge::OpenStream() {
  auto request = std::make_shared<OpenRequest>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ || ended_.load())
      return Unavailable("the yamux session ended" + (error_.ok() ? std::string() : ": " + error_.message()));
    requests_.push_back(request);
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, kOpenTimeout, [&] { return request->done; })) {
    requests_.erase(std::remove(requests_.begin(), requests_.end(), request), requests_.end());
    return DeadlineExceeded("the peer did not acknowledge the yamux streams opened earlier within 30 s; "
                            "check that it accepts the streams the node opens");
  }
  return request->result;
}

void YamuxBridge::Run() {
  std::vector<pollfd> fds;
  std::vector<uint32_t> ids;
  while (!ended_.load()) {
    bool stop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop = stop_;
    }
    if (stop) {
      End(Unavailable("the yamux session was stopped"));
      break;
    }
    ProcessOpenRequests();
    DispatchOpened();
    // Data read from socketpairs that did not fit the window before.
    for (auto it = streams_.begin(); it != streams_.end();) {
      const uint32_t id = it->first;
      Stream& s = (it++)->second;
      if (!s.from_fd.empty() && session_->send_window(id) > 0) {
        auto took = session_->Write(id, s.from_fd);
        if (took.ok()) s.from_fd.erase(0, *took);
      }
      if (s.from_fd.empty() && s.fd_eof && !s.fin_sent) {
        s.fin_sent = true;
        (void)session_->Close(id);
      }
      MaybeFinish(id);
    }
    if (!Flush()) break;
    if (!session_->error().ok()) {
      End(session_->error());
      break;
    }

    fds.assign({{wake_fd_, POLLIN, 0}, {fd_, static_cast<short>(POLLIN | (pending_output() > 0 ? POLLOUT : 0)), 0}});
    ids.assign({0, 0});
    for (auto& [id, s] : streams_) {
      short events = 0;
      // A stream whose window is closed is not read (nor polled: a hung-up
      // socketpair would report POLLHUP forever); the peer's window update
      // (what OnWritable reports) reopens it, and this round's recomputation
      // reads it again.
      if (!s.fd_eof && s.from_fd.empty() && session_->send_window(id) > 0 && pending_output() < kMaxPendingOutput)
        events |= POLLIN;
      if (!s.to_fd.empty()) events |= POLLOUT;
      if (events == 0) continue;
      fds.push_back({s.fd, events, 0});
      ids.push_back(id);
    }
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      End(Internal(Errno("yamux bridge: poll")));
      break;
    }
    if (fds[0].revents != 0) {
      uint64_t count;
      (void)!read(wake_fd_, &count, sizeof count);
    }
    if (fds[1].revents != 0) ReadSocket();
    for (size_t i = 2; i < fds.size() && !ended_.load(); ++i) {
      if (fds[i].revents == 0) continue;
      // The stream may have ended meanwhile (a reset read from the socket).
      auto it = streams_.find(ids[i]);
      if (it == streams_.end() || it->second.fd != fds[i].fd) continue;
      // POLLHUP/POLLERR: the write or the read finds out what happened.
      const short ready = fds[i].revents;
      if ((fds[i].events & POLLOUT) && (ready & (POLLOUT | POLLHUP | POLLERR))) WriteStream(ids[i], it->second);
      it = streams_.find(ids[i]);
      if (it != streams_.end() && (fds[i].events & POLLIN) && (ready & (POLLIN | POLLHUP | POLLERR)))
        ReadStream(ids[i], it->second);
      MaybeFinish(ids[i]);
    }
  }
  // Best effort: a GoAway telling the peer why the session failed.
  (void)Flush();
  for (auto& [id, s] : streams_) close(s.fd);
  streams_.clear();
  for (int fd : opened_) close(fd);
  opened_.clear();
  close(fd_);
  FailOpenRequests(error());
}

void YamuxBridge::End(Status why) {
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = std::move(why);
  ended_.store(true);
}

void YamuxBridge::ProcessOpenRequests() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!requests_.empty()) {
    std::shared_ptr<OpenRequest> request = requests_.front();
    auto id = session_->Open();
    // Earlier opens await the peer's ACK: try again once one comes.
    if (!id.ok() && id.status().code() == StatusCode::kResourceExhausted) return;
    requests_.pop_front();
    request->done = true;
    if (!id.ok()) {
      request->result = id.status();
      continue;
    }
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
      request->result = Internal(Errno("yamux bridge: socketpair for a new stream"));
      (void)session_->Reset(*id);
      continue;
    }
    streams_[*id].fd = pair[0];
    request->result = pair[1];
  }
  cv_.notify_all();
}

void YamuxBridge::FailOpenRequests(const Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& request : requests_) {
    request->done = true;
    request->result = Unavailable("the yamux session ended: " + why.message());
  }
  requests_.clear();
  cv_.notify_all();
}

void YamuxBridge::DispatchOpened() {
  std::vector<int> opened;
  opened.swap(opened_);
  for (int fd : opened) options_.on_peer_stream(fd);
}

bool YamuxBridge::Flush() {
  for (;;) {
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
      session_->TakeOutput(&out_);
      if (out_.empty()) return true;
    }
    ssize_t n = send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL);
    if (n > 0) {
      out_off_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    End(Unavailable(Errno("writing to the yamux connection")));
    return false;
  }
}

void YamuxBridge::ReadSocket() {
  char buf[kChunk];
  ssize_t n = read(fd_, buf, sizeof buf);
  if (n > 0) {
    (void)session_->Receive(std::string_view(buf, static_cast<size_t>(n)));  // errors: session_->error()
    return;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n < 0) {
    End(Unavailable(Errno("reading the yamux connection")));
    return;
  }
  (void)session_->ReceiveEof();
  End(Unavailable("the peer closed the yamux connection"));
}

void YamuxBridge::ReadStream(uint32_t id, Stream& s) {
  const size_t room = std::min<size_t>(kChunk, session_->send_window(id));
  if (room == 0) return;
  char buf[kChunk];
  ssize_t n = read(s.fd, buf, room);
  if (n > 0) {
    auto took = session_->Write(id, std::string_view(buf, static_cast<size_t>(n)));
    if (!took.ok()) {
      DropStream(id, true);
      return;
    }
    s.from_fd.append(buf + *took, static_cast<size_t>(n) - *took);
    return;
  }
  if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n < 0) {
    DropStream(id, true);
    return;
  }
  s.fd_eof = true;
  if (s.from_fd.empty() && !s.fin_sent) {
    s.fin_sent = true;
    (void)session_->Close(id);
  }
}

void YamuxBridge::WriteStream(uint32_t id, Stream& s) {
  size_t written = 0;
  while (written < s.to_fd.size()) {
    ssize_t n = send(s.fd, s.to_fd.data() + written, s.to_fd.size() - written, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // The other end is gone: nothing more can be delivered on this stream.
    DropStream(id, true);
    return;
  }
  if (written > 0) {
    s.to_fd.erase(0, written);
    // Only now may the peer send more: the window bounds what waits here.
    (void)session_->Consume(id, written);
  }
  if (s.to_fd.empty() && s.peer_fin && !s.write_shut) {
    s.write_shut = true;
    shutdown(s.fd, SHUT_WR);
  }
}

void YamuxBridge::MaybeFinish(uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  const Stream& s = it->second;
  // Done both ways: our FIN sent, and the peer's FIN passed on after the
  // last of its data.
  if (s.fin_sent && s.write_shut) DropStream(id, false);
}

void YamuxBridge::DropStream(uint32_t id, bool reset) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  close(it->second.fd);
  streams_.erase(it);
  if (reset) (void)session_->Reset(id);
}

void YamuxBridge::OnStreamOpened(uint32_t id) {
  if (!options_.on_peer_stream) {
    (void)session_->Reset(id);
    return;
  }
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    (void)session_->Reset(id);
    return;
  }
  if (!session_->Accept(id).ok()) {
    close(pair[0]);
    close(pair[1]);
    return;
  }
  streams_[id].fd = pair[0];
  opened_.push_back(pair[1]);
}

void YamuxBridge::OnData(uint32_t id, std::string_view bytes) {
  auto it = streams_.find(id);
  if (it == streams_.end()) {
    (void)session_->Reset(id);
    return;
  }
  it->second.to_fd.append(bytes);
  WriteStream(id, it->second);
}

void YamuxBridge::OnPeerClosed(uint32_t id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  it->second.peer_fin = true;
  WriteStream(id, it->second);
}

void YamuxBridge::OnStreamReset(uint32_t id) { DropStream(id, false); }

void YamuxBridge::OnError(const Status&) {
  // The loop reads session_->error() after every round.
}

}  // namespace praefect::storagenode
