#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/status_or.h"
#include "yamux/frame.h"
#include "yamux/session_listener.h"

namespace praefect::yamux {

enum class Role {
  kClient,  // opens odd stream ids (praefect on a node connection)
  kServer,  // opens even stream ids (the node)
};

struct SessionOptions {
  Role role = Role::kClient;
  // How far each stream's receive window grows: the first Window Update of a
  // stream (with its SYN or ACK) raises it from 256 KiB to this, and the
  // window is topped up to it as the owner consumes data, once half of it is
  // free ([yamux] maximum_stream_window_size_bytes). At least 256 KiB.
  uint32_t max_stream_window = kInitialStreamWindow;
  // Streams the peer opened and the owner has not accepted yet; a SYN beyond
  // them is refused (RST), as hashicorp/yamux does. Also the number of the
  // owner's opens that may await the peer's ACK, since hashicorp/yamux
  // assumes both sides have the same backlog ([yamux] accept_backlog). At
  // least 1.
  uint32_t accept_backlog = 256;
  // Names the remote end in error messages ("gitaly-1.internal:8075").
  std::string peer;
};

// One yamux session (hashicorp/yamux's protocol, version 0) as a filter over
// bytes, like http2::TlsFilter: it owns no socket and never blocks. Its owner
// moves bytes between the session and a connection, and drives the streams:
//
//   socket readable:  n = read(fd, buf)
//                     n > 0:  Receive(buf[0, n)): frames are parsed as they
//                             come (split anywhere), and the listener hears
//                             of opened streams, data, FIN, RST, pings and
//                             GoAway from inside the call
//                     n == 0: ReceiveEof()
//   streams:          Open() -> id; Write(id, bytes) takes what the peer's
//                     window allows (OnWritable says when more fits);
//                     Consume(id, n) for data handled; Close(id) half-closes
//                     (FIN); Reset(id) (RST); Ping(); GoAway()
//   after any call:   TakeOutput(&out) and write `out` to the socket
//
// A partial write leaves the rest in the owner's buffer: keep writing it from
// an offset, and pass the buffer to TakeOutput again only once it is empty
// (TakeOutput then swaps instead of appending). Write copies the bytes into
// the output once; received data is handed to OnData in place, from the
// bytes given to Receive. No heap allocation per frame (allocation_test):
// only the output buffer grows, and a stream costs one map node.
//
// Where the spec allows it, the session is stricter than hashicorp/yamux
// (which never sends any of these): a frame for a stream never opened, a SYN
// with the wrong parity or an id not above the peer's previous one, unknown
// flags, an ACK that acknowledges nothing, data after FIN, a window update
// that overflows 32 bits, and a Ping or GoAway on a stream other than 0 are
// protocol errors. Frames for a stream that ended (closed both ways, reset,
// refused) are dropped, as the peer may have sent them before it knew.
//
// Errors are sticky: after a protocol error, a GoAway with an error code or
// the end of the connection every call returns the same UNAVAILABLE Status
// ("yamux session with gitaly-1:8075: protocol error: Data none stream 3
// length 300000: 300000 bytes on stream 3 exceed its receive window (262144
// bytes)"); after a protocol error, write what TakeOutput still gives (a
// GoAway telling the peer why), then close. Misuse of a stream (writing
// after Close, accepting a stream that is not waiting) returns
// FAILED_PRECONDITION and does not end the session.
//
// Not thread-safe: used by one event loop.
class Session {
 public:
  // `listener` must outlive the session. INVALID_ARGUMENT names an option out
  // of range.
  static StatusOr<std::unique_ptr<Session>> Create(SessionOptions options, SessionListener* listener);

  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Bytes read from the connection; takes all of them.
  // REQUIRES: not called from a listener callback.
  [[nodiscard]] Status Receive(std::string_view bytes);
  // The connection reached end of file: the session is over.
  [[nodiscard]] Status ReceiveEof();

  // Appends the bytes to send to `out` (swaps them in when `out` is empty).
  void TakeOutput(std::string* out);
  size_t output_size() const { return output_.size(); }

  // Opens a stream (SYN). RESOURCE_EXHAUSTED while accept_backlog of the
  // owner's streams await the peer's ACK (see OnStreamAcknowledged) or when
  // stream ids run out; FAILED_PRECONDITION after the peer's GoAway.
  [[nodiscard]] StatusOr<uint32_t> Open();
  // Accepts a stream the peer opened (ACK, with the window growth).
  [[nodiscard]] Status Accept(uint32_t id);
  // Queues up to bytes.size() bytes on stream `id`, as many as the peer's
  // window allows (0 when it is closed), and returns how many. Accepts the
  // stream first if it waits.
  [[nodiscard]] StatusOr<size_t> Write(uint32_t id, std::string_view bytes);
  // The owner has handled `n` more bytes of stream `id`'s data; sends a
  // Window Update once half of the window is free. A stream that is gone is
  // ignored.
  [[nodiscard]] Status Consume(uint32_t id, size_t n);
  // Half-closes stream `id` (FIN): nothing more will be written; data still
  // comes until the peer closes too. Accepts the stream first if it waits.
  // Closing twice is harmless.
  [[nodiscard]] Status Close(uint32_t id);
  // Resets stream `id` (RST); it is gone at once. A stream already gone is
  // ignored.
  [[nodiscard]] Status Reset(uint32_t id);
  // Tells the peer to open no more streams (GoAway with `code`); the streams
  // it opens from now on are refused. The streams already open go on.
  [[nodiscard]] Status GoAway(GoAwayCode code = GoAwayCode::kNormal);
  // Sends a Ping; OnPingAnswered(id) follows the peer's answer.
  // RESOURCE_EXHAUSTED with kMaxPingsInFlight unanswered.
  [[nodiscard]] StatusOr<uint32_t> Ping();

  // OK, or the error that ended the session.
  const Status& error() const { return error_; }
  // The stream exists: opened and not yet closed both ways nor reset.
  bool IsOpen(uint32_t id) const { return streams_.count(id) != 0; }
  size_t open_streams() const { return streams_.size(); }
  // The bytes Write would take now on stream `id` (0 when it is gone).
  uint32_t send_window(uint32_t id) const;
  // Streams the peer opened that wait for Accept.
  uint32_t pending_accepts() const { return pending_accepts_; }
  // Opens of the peer refused because the backlog was full or after GoAway.
  uint64_t refused_streams() const { return refused_streams_; }
  // The peer sent GoAway (normal): Open fails.
  bool peer_went_away() const { return remote_goaway_; }

  static constexpr size_t kMaxPingsInFlight = 64;

 private:
  struct Stream {
    uint32_t send_window = kInitialStreamWindow;  // bytes we may still send
    uint32_t recv_window = kInitialStreamWindow;  // bytes the peer may still send
    uint32_t buffered = 0;                        // handed to OnData, not yet consumed
    uint32_t arriving = 0;                        // of the Data frame being read, not yet handed over
    bool awaiting_ack = false;                    // ours, not acknowledged yet
    bool awaiting_accept = false;                 // the peer's, not accepted yet
    bool sent_fin = false;
    bool got_fin = false;
    bool write_blocked = false;  // a Write took less than it was given
  };

  Session(SessionOptions options, SessionListener* listener);

  // Receive path (session_receive.cc).
  void ReceiveSome(std::string_view* bytes);
  void OnHeader(const FrameHeader& h);
  // Data and Window Update: checked whole (ValidSyn, ValidStreamFrame), then
  // applied, so that a bad frame changes nothing.
  void OnStreamFrame(const FrameHeader& h);
  bool ValidSyn(const FrameHeader& h, bool exists);
  bool ValidStreamFrame(const FrameHeader& h, const Stream& s);
  // Registers the peer's new stream, or refuses it (nullptr).
  Stream* OpenFromPeer(uint32_t id);
  void ApplyStreamFrame(const FrameHeader& h);
  // The payload of `h`, if it has one, is read and dropped.
  void DropPayload(const FrameHeader& h);
  void OnPayload(std::string_view chunk);
  void OnPeerFin(uint32_t id);
  void OnPing(const FrameHeader& h);
  void OnGoAwayFrame(const FrameHeader& h);
  // For an id the session does not know: the stream ended (true), or it was
  // never opened (false).
  bool Ended(uint32_t id) const;

  Stream* Find(uint32_t id);
  bool OwnId(uint32_t id) const;
  void Remove(uint32_t id);
  void SendAccept(uint32_t id, Stream* s, uint16_t extra_flags);
  void MaybeSendWindowUpdate(uint32_t id, Stream* s);
  // The window delta that brings the peer's allowance back to the maximum.
  uint32_t Grantable(const Stream& s) const;

  // Ends the session with `error` (the first error wins); with
  // `tell_peer`, queues a GoAway(protocol error) first.
  void Fail(Status error, bool tell_peer);
  void ProtocolError(const std::string& what);
  std::string Prefix() const;
  Status StreamGone(uint32_t id) const;

  const SessionOptions options_;
  SessionListener* const listener_;
  std::unordered_map<uint32_t, Stream> streams_;
  std::string output_;

  // The frame being read: its header bytes, then the rest of its payload.
  char header_[kHeaderSize] = {};
  size_t header_have_ = 0;
  uint32_t payload_left_ = 0;
  uint32_t payload_stream_ = 0;  // 0: the payload is dropped
  bool payload_fin_ = false;     // the Data frame carried FIN: applied after its payload

  uint32_t next_id_;           // our next stream id
  uint32_t last_peer_id_ = 0;  // the peer's highest SYN
  uint32_t pending_accepts_ = 0;
  uint32_t unacked_opens_ = 0;
  uint64_t refused_streams_ = 0;
  uint32_t next_ping_ = 0;
  std::vector<uint32_t> pings_in_flight_;
  bool local_goaway_ = false;
  bool remote_goaway_ = false;
  bool in_receive_ = false;
  Status error_;
};

}  // namespace praefect::yamux
