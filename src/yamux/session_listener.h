#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "yamux/frame.h"

namespace praefect::yamux {

// What a Session tells its owner. Every call comes from inside Session's
// Receive or ReceiveEof, never from the owner's own calls (Open, Write, ...),
// so an owner can act on the session from inside a callback: Accept, Write,
// Consume, Close, Reset, Open, Ping, GoAway are allowed there; Receive and
// ReceiveEof are not, nor destroying the session. Every method does nothing
// by default.
class SessionListener {
 public:
  virtual ~SessionListener() = default;

  // The peer opened stream `id` (SYN). Until the owner calls Accept (or
  // Write, Close, Reset on it) the stream counts against the accept backlog,
  // and the peer, whose opens wait for our ACK, may not be able to open
  // another: accept promptly. Data may arrive before that.
  virtual void OnStreamOpened(uint32_t /*id*/) {}

  // The peer acknowledged stream `id`, one the owner opened (ACK). Until then
  // the stream counts against the opens that may await an ACK (Open).
  virtual void OnStreamAcknowledged(uint32_t /*id*/) {}

  // Bytes received on stream `id`. They are only valid during the call: keep
  // a copy, and call Consume(id, n) once n of them are handled, which opens
  // the receive window again. Before that the peer may send at most the
  // configured window.
  virtual void OnData(uint32_t /*id*/, std::string_view /*bytes*/) {}

  // The peer half-closed stream `id` (FIN): no more data will come on it.
  // Once the owner has closed it too, the stream is gone.
  virtual void OnPeerClosed(uint32_t /*id*/) {}

  // The peer reset stream `id` (RST): it is gone; nothing more can be sent or
  // received on it. Also how the peer refuses an open (backlog full, or it
  // sent GoAway).
  virtual void OnStreamReset(uint32_t /*id*/) {}

  // A Write to stream `id` took fewer bytes than it was given, and the peer
  // has now opened its window: more can be written.
  virtual void OnWritable(uint32_t /*id*/) {}

  // The peer answered the Ping that returned `ping_id`.
  virtual void OnPingAnswered(uint32_t /*ping_id*/) {}

  // The peer sent GoAway. With kNormal it opens no more streams, accepts
  // none of ours (Open fails), and the streams already open go on; any other
  // code ends the session (OnError follows).
  virtual void OnGoAway(uint32_t /*code*/) {}

  // The session failed, once: a protocol error of the peer (a GoAway telling
  // it why is ready in TakeOutput), a GoAway with an error code, or the end
  // of the connection. `error` is the sticky Status every call now returns.
  virtual void OnError(const Status& /*error*/) {}
};

}  // namespace praefect::yamux
