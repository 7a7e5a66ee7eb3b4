// Session's receive path: frames parsed as bytes come, checked, then applied.
#include <algorithm>
#include <cstring>
#include <limits>

#include "yamux/session.h"

namespace praefect::yamux {

namespace {

std::string Id(uint32_t id) { return std::to_string(id); }

}  // namespace

Status Session::Receive(std::string_view bytes) {
  if (in_receive_) return FailedPrecondition(Prefix() + "Receive called from a listener callback");
  if (!error_.ok()) return error_;
  in_receive_ = true;
  while (!bytes.empty() && error_.ok()) ReceiveSome(&bytes);
  in_receive_ = false;
  return error_;
}

Status Session::ReceiveEof() {
  if (in_receive_) return FailedPrecondition(Prefix() + "ReceiveEof called from a listener callback");
  if (!error_.ok()) return error_;
  std::string why;
  if (header_have_ > 0) {
    why = "the connection ended inside a frame header (" + std::to_string(header_have_) + " of " +
          std::to_string(kHeaderSize) + " bytes)";
  } else if (payload_left_ > 0) {
    why = "the connection ended inside a Data frame (" + std::to_string(payload_left_) +
          " bytes of its payload missing)";
  } else {
    why = "the peer closed the connection";
  }
  if (!streams_.empty()) why += " with " + std::to_string(streams_.size()) + " streams open";
  in_receive_ = true;
  Fail(Unavailable(Prefix() + why), false);
  in_receive_ = false;
  return error_;
}

void Session::ReceiveSome(std::string_view* bytes) {
  if (payload_left_ > 0) {
    const size_t n = std::min<size_t>(payload_left_, bytes->size());
    const std::string_view chunk = bytes->substr(0, n);
    bytes->remove_prefix(n);
    OnPayload(chunk);
    return;
  }
  const size_t n = std::min(kHeaderSize - header_have_, bytes->size());
  std::memcpy(header_ + header_have_, bytes->data(), n);
  header_have_ += n;
  bytes->remove_prefix(n);
  if (header_have_ < kHeaderSize) return;
  header_have_ = 0;
  OnHeader(DecodeHeader(header_));
}

void Session::OnHeader(const FrameHeader& h) {
  if (h.version != kProtocolVersion) {
    ProtocolError("frame header of version " + std::to_string(h.version) + " (only version 0 exists): bytes " +
                  HexBytes(std::string_view(header_, kHeaderSize)) + "; does the peer speak yamux?");
    return;
  }
  switch (static_cast<FrameType>(h.type)) {
    case FrameType::kData:
    case FrameType::kWindowUpdate:
      OnStreamFrame(h);
      return;
    case FrameType::kPing:
      OnPing(h);
      return;
    case FrameType::kGoAway:
      OnGoAwayFrame(h);
      return;
  }
  ProtocolError("frame of unknown type " + std::to_string(h.type) + " (bytes " +
                HexBytes(std::string_view(header_, kHeaderSize)) + ")");
}

void Session::OnStreamFrame(const FrameHeader& h) {
  const uint32_t id = h.stream_id;
  if ((h.flags & ~kKnownFlags) != 0) {
    ProtocolError(DescribeHeader(h) + ": unknown flags");
    return;
  }
  if (id == 0) {
    ProtocolError(DescribeHeader(h) + ": stream 0 is the session's, not a stream");
    return;
  }
  Stream* s = Find(id);
  const bool syn = (h.flags & kFlagSyn) != 0;
  if (syn) {
    if (!ValidSyn(h, s != nullptr)) return;
  } else if (s == nullptr) {
    if (!Ended(id)) {
      ProtocolError(DescribeHeader(h) + ": stream " + Id(id) + " was never opened");
      return;
    }
    DropPayload(h);  // the stream ended; the peer sent this before it knew
    return;
  }
  const Stream fresh;
  if (!ValidStreamFrame(h, syn ? fresh : *s)) return;
  if (syn && OpenFromPeer(id) == nullptr) {
    DropPayload(h);  // refused, or reset from OnStreamOpened
    return;
  }
  ApplyStreamFrame(h);
}

bool Session::ValidSyn(const FrameHeader& h, bool exists) {
  const uint32_t id = h.stream_id;
  const char* opener = options_.role == Role::kClient ? "the server opens even ids" : "the client opens odd ids";
  if ((h.flags & kFlagAck) != 0) {
    ProtocolError(DescribeHeader(h) + ": SYN and ACK together");
  } else if (exists) {
    ProtocolError(DescribeHeader(h) + ": stream " + Id(id) + " is already open");
  } else if (OwnId(id)) {
    ProtocolError(DescribeHeader(h) + ": the peer opened stream " + Id(id) + ", an id of ours (" + opener + ")");
  } else if (id <= last_peer_id_) {
    ProtocolError(DescribeHeader(h) + ": the peer opened stream " + Id(id) + " after stream " + Id(last_peer_id_) +
                  " (ids must grow)");
  } else {
    return true;
  }
  return false;
}

bool Session::ValidStreamFrame(const FrameHeader& h, const Stream& s) {
  const uint32_t id = h.stream_id;
  if ((h.flags & kFlagAck) != 0 && !s.awaiting_ack) {
    ProtocolError(DescribeHeader(h) + ": ACK for stream " + Id(id) + ", which awaits no acknowledgement");
  } else if (s.got_fin && (h.flags & kFlagFin) != 0) {
    ProtocolError(DescribeHeader(h) + ": a second FIN on stream " + Id(id));
  } else if (s.got_fin && h.type == static_cast<uint8_t>(FrameType::kData) && h.length > 0) {
    ProtocolError(DescribeHeader(h) + ": data on stream " + Id(id) + " after its FIN");
  } else if (h.type == static_cast<uint8_t>(FrameType::kData) && h.length > s.recv_window) {
    ProtocolError(DescribeHeader(h) + ": " + std::to_string(h.length) + " bytes on stream " + Id(id) +
                  " exceed its receive window (" + std::to_string(s.recv_window) + " bytes)");
  } else if (h.type == static_cast<uint8_t>(FrameType::kWindowUpdate) &&
             uint64_t{s.send_window} + h.length > std::numeric_limits<uint32_t>::max()) {
    ProtocolError(DescribeHeader(h) + ": stream " + Id(id) + "'s send window of " + std::to_string(s.send_window) +
                  " bytes would overflow 32 bits");
  } else {
    return true;
  }
  return false;
}

Session::Stream* Session::OpenFromPeer(uint32_t id) {
  last_peer_id_ = id;
  if (local_goaway_ || pending_accepts_ >= options_.accept_backlog) {
    AppendHeader(FrameType::kWindowUpdate, kFlagRst, id, 0, &output_);
    ++refused_streams_;
    return nullptr;
  }
  streams_[id].awaiting_accept = true;
  ++pending_accepts_;
  listener_->OnStreamOpened(id);
  return Find(id);
}

void Session::ApplyStreamFrame(const FrameHeader& h) {
  const uint32_t id = h.stream_id;
  Stream* s = Find(id);
  if ((h.flags & kFlagAck) != 0) {
    s->awaiting_ack = false;
    --unacked_opens_;
    listener_->OnStreamAcknowledged(id);
    if ((s = Find(id)) == nullptr) return DropPayload(h);
  }
  if ((h.flags & kFlagRst) != 0) {
    Remove(id);
    listener_->OnStreamReset(id);
    return DropPayload(h);
  }
  const bool fin = (h.flags & kFlagFin) != 0;
  if (h.type == static_cast<uint8_t>(FrameType::kWindowUpdate)) {
    s->send_window += h.length;
    if (h.length > 0 && s->write_blocked) {
      s->write_blocked = false;
      listener_->OnWritable(id);
    }
    if (fin) OnPeerFin(id);
    return;
  }
  if (h.length == 0) {
    if (fin) OnPeerFin(id);
    return;
  }
  s->recv_window -= h.length;
  s->arriving = h.length;
  payload_stream_ = id;
  payload_left_ = h.length;
  payload_fin_ = fin;
}

void Session::DropPayload(const FrameHeader& h) {
  if (h.type != static_cast<uint8_t>(FrameType::kData)) return;
  payload_stream_ = 0;
  payload_left_ = h.length;
  payload_fin_ = false;
}

void Session::OnPayload(std::string_view chunk) {
  payload_left_ -= static_cast<uint32_t>(chunk.size());
  if (payload_stream_ == 0) return;
  const uint32_t id = payload_stream_;
  if (Stream* s = Find(id); s != nullptr) {
    s->arriving -= static_cast<uint32_t>(chunk.size());
    s->buffered += static_cast<uint32_t>(chunk.size());
    listener_->OnData(id, chunk);
  }
  if (payload_left_ == 0 && payload_fin_) OnPeerFin(id);
}

void Session::OnPeerFin(uint32_t id) {
  Stream* s = Find(id);
  if (s == nullptr) return;  // reset by the owner meanwhile
  s->got_fin = true;
  if (s->sent_fin) Remove(id);
  listener_->OnPeerClosed(id);
}

bool Session::Ended(uint32_t id) const { return OwnId(id) ? id < next_id_ : id <= last_peer_id_; }

void Session::OnPing(const FrameHeader& h) {
  if (h.stream_id != 0) {
    ProtocolError(DescribeHeader(h) + ": a Ping belongs to stream 0");
  } else if (h.flags == kFlagSyn) {
    AppendHeader(FrameType::kPing, kFlagAck, 0, h.length, &output_);
  } else if (h.flags == kFlagAck) {
    const auto it = std::find(pings_in_flight_.begin(), pings_in_flight_.end(), h.length);
    if (it == pings_in_flight_.end()) return;  // late, or not ours: as hashicorp/yamux, ignored
    pings_in_flight_.erase(it);
    listener_->OnPingAnswered(h.length);
  } else {
    ProtocolError(DescribeHeader(h) + ": a Ping carries SYN (a request) or ACK (an answer)");
  }
}

void Session::OnGoAwayFrame(const FrameHeader& h) {
  if (h.stream_id != 0 || h.flags != 0) {
    ProtocolError(DescribeHeader(h) + ": a GoAway belongs to stream 0 and has no flags");
    return;
  }
  remote_goaway_ = true;
  listener_->OnGoAway(h.length);
  std::string why;
  switch (static_cast<GoAwayCode>(h.length)) {
    case GoAwayCode::kNormal:
      return;
    case GoAwayCode::kProtocolError:
      why = " (protocol error): it found our frames malformed";
      break;
    case GoAwayCode::kInternalError:
      why = " (internal error): it failed on its side";
      break;
    default:
      why = " with the unknown code " + std::to_string(h.length);
      break;
  }
  Fail(Unavailable(Prefix() + "the peer ended the session with GoAway" + why), false);
}

}  // namespace praefect::yamux
