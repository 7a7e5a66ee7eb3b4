#include "yamux/session.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace praefect::yamux {

StatusOr<std::unique_ptr<Session>> Session::Create(SessionOptions options, SessionListener* listener) {
  if (options.max_stream_window < kInitialStreamWindow) {
    return InvalidArgument("yamux maximum stream window " + std::to_string(options.max_stream_window) +
                           " bytes is below the protocol's initial window of " +
                           std::to_string(kInitialStreamWindow) + " bytes: use at least that");
  }
  if (options.accept_backlog == 0) {
    return InvalidArgument("yamux accept backlog 0: use at least 1");
  }
  return std::unique_ptr<Session>(new Session(std::move(options), listener));
}

Session::Session(SessionOptions options, SessionListener* listener)
    : options_(std::move(options)), listener_(listener), next_id_(options_.role == Role::kClient ? 1 : 2) {}

void Session::TakeOutput(std::string* out) {
  if (out->empty()) {
    out->swap(output_);
  } else {
    out->append(output_);
  }
  output_.clear();
}

StatusOr<uint32_t> Session::Open() {
  if (!error_.ok()) return error_;
  if (remote_goaway_) {
    return FailedPrecondition(Prefix() + "cannot open a stream: the peer sent GoAway and accepts no new streams");
  }
  if (unacked_opens_ >= options_.accept_backlog) {
    return ResourceExhausted(Prefix() + "cannot open a stream now: " + std::to_string(unacked_opens_) +
                             " opened streams await the peer's ACK (accept backlog " +
                             std::to_string(options_.accept_backlog) + "); open again after one is acknowledged");
  }
  if (next_id_ >= std::numeric_limits<uint32_t>::max() - 1) {
    return ResourceExhausted(Prefix() + "stream ids are exhausted: open a new session");
  }
  const uint32_t id = next_id_;
  next_id_ += 2;
  Stream& s = streams_[id];
  s.awaiting_ack = true;
  ++unacked_opens_;
  // The SYN travels on a Window Update that also grows the peer's allowance
  // from the initial window to ours.
  const uint32_t delta = Grantable(s);
  s.recv_window += delta;
  AppendHeader(FrameType::kWindowUpdate, kFlagSyn, id, delta, &output_);
  return id;
}

Status Session::Accept(uint32_t id) {
  if (!error_.ok()) return error_;
  Stream* s = Find(id);
  if (s == nullptr) return StreamGone(id);
  if (!s->awaiting_accept) {
    return FailedPrecondition(Prefix() + "stream " + std::to_string(id) + " is not waiting to be accepted");
  }
  SendAccept(id, s, 0);
  return Status::Ok();
}

void Session::SendAccept(uint32_t id, Stream* s, uint16_t extra_flags) {
  s->awaiting_accept = false;
  --pending_accepts_;
  const uint32_t delta = Grantable(*s);
  s->recv_window += delta;
  AppendHeader(FrameType::kWindowUpdate, kFlagAck | extra_flags, id, delta, &output_);
}

StatusOr<size_t> Session::Write(uint32_t id, std::string_view bytes) {
  if (!error_.ok()) return error_;
  Stream* s = Find(id);
  if (s == nullptr) return StreamGone(id);
  if (s->sent_fin) {
    return FailedPrecondition(Prefix() + "cannot write to stream " + std::to_string(id) + ": it was closed");
  }
  if (s->awaiting_accept) SendAccept(id, s, 0);
  const size_t n = std::min<size_t>(bytes.size(), s->send_window);
  if (n < bytes.size()) s->write_blocked = true;
  if (n == 0) return size_t{0};
  AppendHeader(FrameType::kData, 0, id, static_cast<uint32_t>(n), &output_);
  output_.append(bytes.data(), n);
  s->send_window -= static_cast<uint32_t>(n);
  return n;
}

Status Session::Consume(uint32_t id, size_t n) {
  if (!error_.ok()) return error_;
  Stream* s = Find(id);
  if (s == nullptr) return Status::Ok();  // it ended: no window to open
  if (n > s->buffered) {
    return FailedPrecondition(Prefix() + "stream " + std::to_string(id) + ": consumed " + std::to_string(n) +
                              " bytes, but only " + std::to_string(s->buffered) + " were received and not consumed");
  }
  s->buffered -= static_cast<uint32_t>(n);
  MaybeSendWindowUpdate(id, s);
  return Status::Ok();
}

Status Session::Close(uint32_t id) {
  if (!error_.ok()) return error_;
  Stream* s = Find(id);
  if (s == nullptr) return StreamGone(id);
  if (s->sent_fin) return Status::Ok();
  if (s->awaiting_accept) {
    SendAccept(id, s, kFlagFin);
  } else {
    AppendHeader(FrameType::kWindowUpdate, kFlagFin, id, 0, &output_);
  }
  s->sent_fin = true;
  if (s->got_fin) Remove(id);
  return Status::Ok();
}

Status Session::Reset(uint32_t id) {
  if (!error_.ok()) return error_;
  if (Find(id) == nullptr) return Status::Ok();
  AppendHeader(FrameType::kWindowUpdate, kFlagRst, id, 0, &output_);
  Remove(id);
  return Status::Ok();
}

Status Session::GoAway(GoAwayCode code) {
  if (!error_.ok()) return error_;
  local_goaway_ = true;
  AppendHeader(FrameType::kGoAway, 0, 0, static_cast<uint32_t>(code), &output_);
  return Status::Ok();
}

StatusOr<uint32_t> Session::Ping() {
  if (!error_.ok()) return error_;
  if (pings_in_flight_.size() >= kMaxPingsInFlight) {
    return ResourceExhausted(Prefix() + std::to_string(pings_in_flight_.size()) +
                             " pings are unanswered: wait for an answer before sending more");
  }
  const uint32_t ping_id = next_ping_++;
  pings_in_flight_.push_back(ping_id);
  AppendHeader(FrameType::kPing, kFlagSyn, 0, ping_id, &output_);
  return ping_id;
}

uint32_t Session::send_window(uint32_t id) const {
  const auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.send_window;
}

Session::Stream* Session::Find(uint32_t id) {
  const auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

bool Session::OwnId(uint32_t id) const { return (id % 2 == 1) == (options_.role == Role::kClient); }

void Session::Remove(uint32_t id) {
  const auto it = streams_.find(id);
  if (it == streams_.end()) return;
  if (it->second.awaiting_ack) --unacked_opens_;
  if (it->second.awaiting_accept) --pending_accepts_;
  streams_.erase(it);
}

uint32_t Session::Grantable(const Stream& s) const {
  // recv_window + buffered + arriving never exceeds the maximum: what the
  // peer may send, what it sent that is not consumed yet.
  return options_.max_stream_window - s.buffered - s.arriving - s.recv_window;
}

void Session::MaybeSendWindowUpdate(uint32_t id, Stream* s) {
  // Nothing more comes after FIN; and a waiting stream's ACK carries the
  // growth.
  if (s->got_fin || s->awaiting_accept) return;
  const uint32_t delta = Grantable(*s);
  // Batched as hashicorp/yamux does: one update once half the window is free.
  if (delta < options_.max_stream_window / 2) return;
  s->recv_window += delta;
  AppendHeader(FrameType::kWindowUpdate, 0, id, delta, &output_);
}

void Session::Fail(Status error, bool tell_peer) {
  if (!error_.ok()) return;
  error_ = std::move(error);
  if (tell_peer) {
    AppendHeader(FrameType::kGoAway, 0, 0, static_cast<uint32_t>(GoAwayCode::kProtocolError), &output_);
  }
  listener_->OnError(error_);
}

void Session::ProtocolError(const std::string& what) { Fail(Unavailable(Prefix() + "protocol error: " + what), true); }

std::string Session::Prefix() const {
  return options_.peer.empty() ? std::string("yamux session: ") : "yamux session with " + options_.peer + ": ";
}

Status Session::StreamGone(uint32_t id) const {
  return FailedPrecondition(Prefix() + "stream " + std::to_string(id) +
                            " is not open (it ended, was reset, or was never opened)");
}

}  // namespace praefect::yamux
