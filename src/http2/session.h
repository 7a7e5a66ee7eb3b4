#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status_or.h"
#include "http2/buffer.h"

typedef struct nghttp2_session nghttp2_session;

// The HTTP/2 codec: nghttp2 sessions wrapped as bytes in, bytes out, with
// streams the layer above drives. Knows frames and streams, nothing of gRPC
// (grpc.h) or of where bytes come from (a Connection, or another session in
// a test). Not thread-safe: one loop drives a session and its streams.
namespace praefect::http2 {

struct HeaderField {
  std::string name;   // lower case, pseudo-headers with their ':'
  std::string value;  // as on the wire (binary metadata base64)
};
using HeaderList = std::vector<HeaderField>;

// A header field by reference: its strings live elsewhere, at least until
// the call it is given to returns.
struct HeaderRef {
  std::string_view name;
  std::string_view value;
};
using HeaderRefs = std::vector<HeaderRef>;
HeaderRefs RefsTo(const HeaderList& headers);

// The value of `name` in `headers`, or nullptr (the first one).
const std::string* FindHeader(const HeaderList& headers, std::string_view name);

// HTTP/2 error codes used here (RFC 9113 §7).
inline constexpr uint32_t kNoError = 0x0;
inline constexpr uint32_t kProtocolError = 0x1;
inline constexpr uint32_t kInternalError = 0x2;
inline constexpr uint32_t kRefusedStream = 0x7;
inline constexpr uint32_t kCancel = 0x8;
inline constexpr uint32_t kEnhanceYourCalm = 0xb;

class Session;
struct Callbacks;

// One stream of a Session, as the layer above uses it. Lives until the
// session reports it closed (Listener::OnClosed) or the session dies.
class Stream {
 public:
  // What the layer above hears of a stream. Each callback runs from within
  // Session::Receive or Session::Produce (or Stream calls), on the loop.
  class Listener {
   public:
    virtual ~Listener() = default;
    // The first HEADERS of the peer: request headers (server side) or
    // response headers (client side). `end_stream`: nothing follows (a
    // request without body, a trailers-only response).
    // The list is the listener's to take from (moving its strings out).
    virtual void OnHeaders(HeaderList& headers, bool end_stream) = 0;
    // DATA from the peer. The bytes count against the stream's window until
    // the layer above calls Consume for them. They live until the callback
    // returns, unless kept by a reference to their block (SendData of the
    // Slice does that).
    virtual void OnData(const Slice& bytes) = 0;
    // Trailers (the last HEADERS, with END_STREAM).
    virtual void OnTrailers(const HeaderList& trailers) = 0;
    // The peer ended its side (END_STREAM), after all its DATA.
    virtual void OnEndStream() = 0;
    // The queued outbound DATA was taken by the session: more may be sent.
    virtual void OnSendQueueDrained() = 0;
    // The stream is gone: `error_code` kNoError when both sides ended
    // normally, else why (the peer's RST_STREAM, ours, or the session's
    // end). No call follows; the Stream object dies after this returns.
    virtual void OnClosed(uint32_t error_code) = 0;
  };

  int32_t id() const { return id_; }
  void set_listener(Listener* listener) { listener_ = listener; }

  // Response headers (server side). `end_stream`: a trailers-only answer.
  void SubmitResponse(const HeaderList& headers, bool end_stream);
  // Queues DATA (taken by the session as the peer's window allows): bytes
  // copied, or a slice referenced without a copy when it names its block.
  void SendData(std::string_view bytes);
  void SendData(const Slice& bytes);
  // Bytes queued and not yet taken by the session.
  size_t queued() const { return out_.size(); }
  // Ends our side after the queued DATA: with trailers (server side), or
  // bare (client side half-close).
  void SendTrailers(HeaderList trailers);
  void EndStream();
  // RST_STREAM; OnClosed follows.
  void Reset(uint32_t error_code);
  // Reopens the receive window by `bytes` of DATA the layer above is done with.
  void Consume(size_t bytes);
  // Sets this stream's receive window (from now on) to `size` bytes.
  void SetReceiveWindow(int32_t size);
  // The peer ended its side (END_STREAM seen).
  bool remote_closed() const { return remote_closed_; }
  bool local_closed() const { return local_end_ != LocalEnd::kOpen; }
  // The peer's header list was over SessionOptions::max_header_list_bytes:
  // OnHeaders got only the fields up to the limit.
  bool headers_too_large() const { return headers_too_large_; }

 private:
  friend class Session;
  friend class ClientSession;
  friend struct Callbacks;
  Stream(Session* session, int32_t id) : session_(session), id_(id) {}
  void Resume();

  enum class LocalEnd { kOpen, kEndPending, kTrailersPending, kDone };
  Session* const session_;
  int32_t id_;
  Listener* listener_ = nullptr;
  ByteQueue out_;
  bool data_provider_ = false;  // a data provider is attached (request body / response DATA)
  bool deferred_ = false;       // the provider returned DEFERRED; resume on new data
  LocalEnd local_end_ = LocalEnd::kOpen;
  HeaderList trailers_;
  bool remote_closed_ = false;
  bool headers_seen_ = false;
  HeaderList headers_in_;
  size_t header_bytes_ = 0;
  bool headers_too_large_ = false;
  size_t promised_ = 0;  // queued bytes a DATA frame took, not yet written (NO_COPY)
  size_t received_ = 0;  // DATA bytes received
  size_t consumed_ = 0;  // of which consumed
  bool drained_pending_ = false;
};

struct SessionOptions {
  // Our receive window per stream at its start (SETTINGS_INITIAL_WINDOW_SIZE)
  // and for the whole connection.
  int32_t initial_stream_window = 64 * 1024;
  int32_t connection_window = 16 * 1024 * 1024;
  // SETTINGS_MAX_FRAME_SIZE we announce: the largest frame the peer may
  // send. Larger frames cost less per byte (gRPC C core sends up to this;
  // grpc-go always sends 16 KiB).
  uint32_t max_frame_size = 16384;
  // SETTINGS_MAX_CONCURRENT_STREAMS we announce (server side).
  uint32_t max_concurrent_streams = 1000;
  // Largest header list accepted from the peer (names + values + 32 per
  // field); a larger one is flagged to the listener (which refuses the
  // call). 256 KiB: far above gRPC C core's default (8 KiB) and what GitLab
  // sends (feature flags, correlation and client identifiers), below
  // grpc-go's 16 MiB, which would let each unauthenticated stream make
  // praefect hold that much until it is refused.
  uint32_t max_header_list_bytes = 256 * 1024;
};

// Base of both sides. Bytes in with Receive, bytes out with Produce.
class Session {
 public:
  // What the owner hears of the session as a whole.
  class Owner {
   public:
    virtual ~Owner() = default;
    // Server side: a new stream's request headers arrived. Set its listener
    // (or Reset it) before returning; OnHeaders follows at once.
    virtual void OnNewStream(Stream* stream) = 0;
    // The session has output to produce (call Produce soon).
    virtual void OnWantWrite() = 0;
    // The peer sent GOAWAY: streams above `last_stream_id` were not processed.
    virtual void OnGoAway(int32_t last_stream_id, uint32_t error_code) = 0;
    // The peer sent a PING (nghttp2 answers it).
    virtual void OnPingReceived() {}
    // A DATA or HEADERS frame went out (keepalive policy: pings after data
    // are expected).
    virtual void OnDataOrHeadersSent() {}
  };

  virtual ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Bytes from the peer. An error means the session is dead (a protocol
  // violation, a flood); the owner closes the connection after producing
  // what is left (a GOAWAY).
  // DATA payloads of an `input` that names its block reach the listeners
  // as slices of it.
  [[nodiscard]] Status Receive(const Slice& input);
  [[nodiscard]] Status Receive(std::string_view bytes) { return Receive(Slice(bytes)); }
  // Appends bytes for the peer to `out`, about `budget` more at most (the
  // owner's room in its output queue). DATA payloads move from their
  // stream's queue to `out` by reference, not copied. Returns false when
  // the session is finished (nothing more to send or receive).
  bool Produce(ByteQueue* out, size_t budget);
  // The last Produce stopped at its budget, with more to send.
  bool stopped_by_budget() const { return stopped_by_budget_; }
  bool WantsWrite() const;
  bool Alive() const;

  // GOAWAY: the peer may not open streams beyond those it opened.
  void GoAway(uint32_t error_code, std::string_view debug = "");
  // The first step of a graceful GOAWAY (a notice the peer sees at once).
  void ShutdownNotice();
  void Ping();
  size_t open_streams() const { return streams_.size(); }
  // The peer sent GOAWAY: no new stream may be opened on this session.
  bool goaway_received() const { return goaway_received_; }
  // How many more streams the peer lets us open (client side).
  uint32_t remote_max_concurrent_streams() const;

  nghttp2_session* raw() { return session_; }

 protected:
  Session(Owner* owner, const SessionOptions& options) : owner_(owner), options_(options) {}
  Stream* AddStream(int32_t id);
  Stream* FindStream(int32_t id);
  void NotifyWantWrite();

  Owner* const owner_;
  const SessionOptions options_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Stream>> streams_;
  bool in_produce_ = false;
  bool want_write_notified_ = false;
  bool goaway_received_ = false;
  ByteQueue* produce_out_ = nullptr;  // Produce's output, for DATA written by callback
  size_t produce_budget_ = 0;
  Block* input_block_ = nullptr;  // the block of what Receive is parsing, if known
  std::vector<int32_t> drained_;  // streams whose queue a DATA frame emptied
  std::vector<int32_t> drained_batch_;
  Stream* last_found_ = nullptr;  // FindStream's last answer
  bool stopped_by_budget_ = false;

 private:
  friend class Stream;
  friend struct Callbacks;
};

// The side praefect's clients talk to.
class ServerSession final : public Session {
 public:
  static StatusOr<std::unique_ptr<ServerSession>> Create(Owner* owner, const SessionOptions& options);

 private:
  using Session::Session;
};

// The side praefect talks to nodes with.
class ClientSession final : public Session {
 public:
  static StatusOr<std::unique_ptr<ClientSession>> Create(Owner* owner, const SessionOptions& options);

  // Opens a stream with request `headers`; `end_stream`: no body at all.
  // nullptr when the session cannot open one now (GOAWAY received, out of
  // stream ids), with `why`.
  // The header strings are copied by nghttp2 before this returns.
  Stream* OpenStream(const HeaderRefs& headers, bool end_stream, Stream::Listener* listener, Status* why);
  Stream* OpenStream(const HeaderList& headers, bool end_stream, Stream::Listener* listener, Status* why) {
    return OpenStream(RefsTo(headers), end_stream, listener, why);
  }

 private:
  using Session::Session;
};

}  // namespace praefect::http2
