#include "driver.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace yamuxtest {

namespace {

constexpr size_t kChunk = 64 * 1024;
// Stop producing frames while this much output waits for the socket.
constexpr size_t kOutputHighWater = 4 << 20;

}  // namespace

size_t Pattern::Fill(char* out, size_t max) {
  const size_t n = static_cast<size_t>(std::min<uint64_t>(max, left_));
  for (size_t i = 0; i < n;) {
    if (used_ == 8) {
      x_ ^= x_ << 13;
      x_ ^= x_ >> 7;
      x_ ^= x_ << 17;
      for (int b = 0; b < 8; ++b) word_[b] = static_cast<unsigned char>(x_ >> (8 * b));
      used_ = 0;
    }
    const size_t c = std::min(n - i, 8 - used_);
    std::memcpy(out + i, word_ + used_, c);
    used_ += c;
    i += c;
  }
  left_ -= n;
  return n;
}

Driver::Driver(int fd, praefect::yamux::SessionOptions options) : fd_(fd), in_(256 * 1024) {
  session_ = std::move(praefect::yamux::Session::Create(std::move(options), this)).value();
  out_ = "backchannel";
}

Driver::~Driver() { Hangup(); }

void Driver::Hangup() {
  if (fd_ < 0) return;
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
}

uint32_t Driver::Open(App app) {
  auto id = session_->Open();
  if (!id.ok()) return 0;
  app.out_ = app.line;
  if (app.payload_size > 0) app.source_ = std::make_unique<Pattern>(app.payload_seed, app.payload_size);
  if (app.expect_pattern) app.expected_ = std::make_unique<Pattern>(app.expect_seed, app.expect_size);
  apps_.emplace(*id, std::move(app));
  return *id;
}

void Driver::OnStreamOpened(uint32_t id) {
  App a;
  a.echo = true;
  a.close_when_sent = false;
  apps_.emplace(id, std::move(a));
  waiting.push_back(id);
  AcceptWaiting();
}

void Driver::AcceptWaiting() {
  if (waiting.empty() || !accept()) return;
  for (const uint32_t id : waiting) {
    if (session_->IsOpen(id)) (void)session_->Accept(id);
  }
  waiting.clear();
}

void Driver::OnStreamAcknowledged(uint32_t id) {
  if (auto it = apps_.find(id); it != apps_.end()) it->second.acknowledged = true;
}

void Driver::OnData(uint32_t id, std::string_view bytes) {
  auto it = apps_.find(id);
  if (it == apps_.end()) return;
  App& a = it->second;
  a.received += bytes.size();
  if (a.echo) {
    a.out_.append(bytes);  // consumed once written back
    return;
  }
  a.consumable_ += bytes.size();
  if (a.expect_text) a.text.append(bytes);
  if (a.expect_pattern && a.error.empty()) {
    char want[4096];
    for (size_t off = 0; off < bytes.size();) {
      const size_t n = a.expected_->Fill(want, std::min(sizeof(want), bytes.size() - off));
      if (n == 0) {
        a.error = "more bytes than the " + std::to_string(a.expect_size) + " expected";
        break;
      }
      if (std::memcmp(want, bytes.data() + off, n) != 0) {
        a.error = "bytes differ near offset " + std::to_string(a.received - bytes.size() + off);
        break;
      }
      off += n;
    }
  }
}

void Driver::OnPeerClosed(uint32_t id) {
  auto it = apps_.find(id);
  if (it == apps_.end()) return;
  App& a = it->second;
  a.got_fin = true;
  if (a.expect_pattern && a.error.empty() && a.received != a.expect_size) {
    a.error = std::to_string(a.received) + " bytes received of " + std::to_string(a.expect_size);
  }
}

void Driver::OnStreamReset(uint32_t id) {
  if (auto it = apps_.find(id); it != apps_.end()) it->second.got_reset = true;
}

void Driver::PumpApps() {
  AcceptWaiting();
  for (auto& [id, a] : apps_) {
    if (output_pressure()) break;
    PumpApp(id, a);
  }
}

bool Driver::output_pressure() const { return session_->output_size() + out_.size() - out_off_ > kOutputHighWater; }

void Driver::PumpApp(uint32_t id, App& a) {
  if (a.finished_sending || a.got_reset || !session_->IsOpen(id)) return;
  if (a.echo && std::find(waiting.begin(), waiting.end(), id) != waiting.end()) return;  // not accepted yet
  for (;;) {
    if (a.out_off_ == a.out_.size()) {
      a.out_.clear();
      a.out_off_ = 0;
      if (a.source_ == nullptr || a.source_->left() == 0) break;
      a.out_.resize(kChunk);
      a.out_.resize(a.source_->Fill(a.out_.data(), kChunk));
    }
    auto n = session_->Write(id, std::string_view(a.out_).substr(a.out_off_));
    if (!n.ok() || *n == 0) return;
    a.out_off_ += *n;
    if (a.echo) (void)session_->Consume(id, *n);  // echoed: the peer may send more
    if (output_pressure()) return;
  }
  const bool all_sent = a.echo ? a.got_fin : true;
  if (!all_sent) return;
  if (a.reset_when_sent) {
    if (a.expect_text && a.text.empty()) return;  // reset once the peer said it is reading
    (void)session_->Reset(id);
    a.finished_sending = a.reset_sent = true;
  } else if (a.close_when_sent || a.echo) {
    (void)session_->Close(id);
    a.finished_sending = true;
  }
}

std::string Driver::Run(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    PumpApps();
    for (auto& [id, a] : apps_) {
      if (a.consumable_ > 0 && session_->IsOpen(id)) (void)session_->Consume(id, a.consumable_);
      a.consumable_ = 0;
    }
    if (out_off_ == out_.size()) {
      out_.clear();
      out_off_ = 0;
    }
    session_->TakeOutput(&out_);
    if (done()) return "";
    if (!session_->error().ok()) return Fail(session_->error().ToString());
    if (std::chrono::steady_clock::now() > deadline) return Fail("timed out");
    pollfd p{fd_, static_cast<short>(eof_ ? 0 : POLLIN), 0};
    if (out_off_ < out_.size()) p.events |= POLLOUT;
    if (::poll(&p, 1, 100) < 0 && errno != EINTR) return Fail(std::string("poll: ") + std::strerror(errno));
    if (p.revents & POLLOUT) {
      const ssize_t w = ::send(fd_, out_.data() + out_off_, out_.size() - out_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno != EAGAIN && errno != EINTR) return Fail(std::string("send: ") + std::strerror(errno));
      if (w > 0) out_off_ += static_cast<size_t>(w);
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t r = ::recv(fd_, in_.data(), in_.size(), MSG_DONTWAIT);
      if (r > 0) {
        (void)session_->Receive(std::string_view(in_.data(), static_cast<size_t>(r)));
      } else if (r == 0) {
        eof_ = true;
        (void)session_->ReceiveEof();
      } else if (errno != EAGAIN && errno != EINTR) {
        return Fail(std::string("recv: ") + std::strerror(errno));
      }
    }
  }
}

std::string Driver::Fail(const std::string& why) {
  std::string out = why + "; streams:";
  for (const auto& [id, a] : apps_) {
    if (a.Done() && a.error.empty()) continue;
    out += " [" + std::to_string(id) + " '" + a.line.substr(0, a.line.find('\n')) + "' received " +
           std::to_string(a.received) + (a.got_fin ? " fin" : "") + (a.got_reset ? " reset" : "") +
           (a.finished_sending ? " closed" : "") + (a.error.empty() ? "" : " error: " + a.error) + "]";
  }
  return out;
}

}  // namespace yamuxtest
