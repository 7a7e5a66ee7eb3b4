#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http2/director.h"
#include "http2/event_loop.h"
#include "http2/grpc.h"
#include "http2/session.h"
#include "http2/upstream_pool.h"

namespace praefect::http2 {

// What a proxied call reports to whoever counts calls (go-grpc-prometheus
// series, the access log). Called on the call's loop. Thread-safe
// implementations only: every loop calls the same observer.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  struct Finished {
    std::string_view method;
    const HeaderList* request_metadata = nullptr;
    StatusCode code = StatusCode::kOk;
    std::string_view message;
    std::chrono::nanoseconds duration{0};
    uint64_t messages_received = 0;
    uint64_t messages_sent = 0;
    std::string_view upstream;  // the Route's label, "" when answered here or refused
    bool upstream_called = false;  // a stream to the Route's upstream was opened (OnUpstreamCall)
    // The Route's log_fields; empty when the call was refused before routing.
    const std::vector<std::pair<std::string, std::string>>* route_fields = nullptr;
  };
  virtual void OnStarted(std::string_view method) = 0;
  // The call opens its stream to the Route's upstream (the node): praefect
  // as a client of the node (grpc_client_*). Not for a transaction's
  // secondaries' streams.
  virtual void OnUpstreamCall(std::string_view method) { (void)method; }
  virtual void OnFinished(const Finished& call) = 0;
};

// Counters of a data plane's calls, shared by every loop. Gauges are
// current values; max_* are high-water marks. "Held" is request and
// response bytes a call keeps in memory: the first message while it is
// read and routed, bytes waiting for the other side, and the streams'
// output queues.
struct ProxyStats {
  std::atomic<int64_t> calls_started{0};
  std::atomic<int64_t> calls_active{0};
  // Calls whose client went away (RST_STREAM, connection lost) before the
  // trailers were sent.
  std::atomic<int64_t> calls_left_by_client{0};
  std::atomic<int64_t> bytes_held{0};
  std::atomic<int64_t> max_bytes_held{0};
};

// What every call of a server shares. Immutable once the server runs, but
// for the director and observer, which are thread-safe.
struct ProxyOptions {
  Director* director = nullptr;
  CallObserver* observer = nullptr;  // may be null
  ProxyStats* stats = nullptr;       // may be null
  // Largest request message; a larger one fails with RESOURCE_EXHAUSTED
  // before its bytes are held. `max_message_hint` is appended to the message.
  uint64_t max_message_bytes = 4 * 1024 * 1024;
  std::string max_message_hint;
  // The stream window of a call once admitted (before: the session's small
  // initial window, all an unauthenticated client can make praefect hold).
  int32_t admitted_window = 1024 * 1024;
  // Bytes a call holds in one direction before it stops taking more from
  // that side (the window then stays closed until they move on).
  size_t forward_high_water = 256 * 1024;
};

// One proxied gRPC call: the stream from the client, the Director's
// decision, the stream to the upstream, and the bytes between them, with
// flow control end to end (a side's window reopens only when its bytes were
// handed to the other side, and each direction holds at most
// forward_high_water). Lives on one loop; owns itself and deletes itself
// when both streams are gone and no answer (Director, commit) is pending.
class ProxyCall final {
 public:
  // Takes over `down` (a new stream of a ServerSession, headers not yet
  // delivered: its listener is set here).
  static void Start(EventLoop* loop, const ProxyOptions* options, UpstreamPool* pool, Stream* down);

  // CallAbort's: fails the call with `why` (on the loop).
  void OnAborted(const Status& why);

  // Public for EventLoop::DeleteSoon only: a call deletes itself.
  ~ProxyCall();
  ProxyCall(const ProxyCall&) = delete;
  ProxyCall& operator=(const ProxyCall&) = delete;

 private:
  class DownListener;
  class UpListener;
  class SecondaryListener;
  class DirectorReply;

  ProxyCall(EventLoop* loop, const ProxyOptions* options, UpstreamPool* pool, Stream* down);

  enum class Phase { kHeaders, kFirstMessage, kDirecting, kOpening, kForwarding, kCommitting, kDone };

  // Downstream (client) events.
  void OnRequestHeaders(HeaderList& headers, bool end_stream);
  void OnRequestData(const Slice& slice);
  void OnRequestEnd();
  void OnDownstreamDrained();
  void OnDownstreamClosed(uint32_t error_code);
  // Upstream (node) events.
  void OnResponseHeaders(HeaderList& headers, bool end_stream);
  void OnResponseData(const Slice& slice);
  void OnResponseTrailers(const HeaderList& trailers);
  void OnUpstreamDrained();
  void OnUpstreamClosed(uint32_t error_code);

  void Direct();
  void OnDirected(StatusOr<Route>&& route);
  void OpenUpstream();
  // The request headers for `upstream` with `set_metadata` (the route's
  // drop_metadata applied); the views point into this call, `timeout` and
  // `encoded`, which must outlive the pool's Open.
  HeaderRefs UpstreamHeaders(const Upstream& upstream,
                             const std::vector<std::pair<std::string, std::string>>& set_metadata,
                             std::string* timeout, std::vector<std::string>* encoded);
  void OnUpstreamOpened(StatusOr<Stream*> stream);
  // The secondaries of a fan-out (Route::secondaries; proxy_call_fanout.cc).
  void OpenSecondaries();
  void OnSecondaryOpened(size_t index, StatusOr<Stream*> stream);
  void OnSecondaryHeaders(size_t index, const HeaderList& headers, bool end_stream);
  void OnSecondaryData(size_t index, const Slice& slice);
  void OnSecondaryTrailers(size_t index, const HeaderList& trailers);
  void OnSecondaryClosed(size_t index, uint32_t error_code);
  void SecondaryFinished(size_t index, const Status& status);
  // Resets every secondary still running (`only_unwanted`: those the route
  // does not wait for) and cancels the opens still pending.
  void CancelSecondaries(bool only_unwanted, const Status& why);
  // What every secondary can take now: 0 when one is full; SIZE_MAX
  // without secondaries.
  size_t SecondaryRoom() const;
  void SendToSecondaries(std::string_view bytes);
  void EndSecondaries();
  // Arms or disarms the stall timer: `stalled` says whether secondaries
  // hold back request bytes the upstream could take.
  void WatchStall(bool stalled);
  void OnStall();
  // The upstream ended and so did every secondary: the commit, or the
  // client's status.
  void Conclude(rpc::CallStatus status);
  void MoveRequestBytes();
  void MoveResponseBytes();
  // Takes what the Route's local_stream has made (on the loop).
  void PullLocal();
  // Ends the call for the client with `status` (trailers after what was
  // sent, or a trailers-only response); cancels the upstream if open.
  void Fail(const Status& status);
  void UpstreamFinished(rpc::CallStatus status);
  void OnCommitted(rpc::CallStatus upstream, std::optional<Status> replacement);
  void SendTrailers(rpc::CallStatus status);
  void Observe(StatusCode code, std::string_view message);
  void OnDeadline();
  void Finalize(const Status& status);
  // Updates ProxyStats::bytes_held with what this call holds now.
  void UpdateHeld();
  void Ref() { ++refs_; }
  void Unref();

  EventLoop* const loop_;
  const ProxyOptions* const options_;
  UpstreamPool* const pool_;
  std::unique_ptr<DownListener> down_listener_;
  std::unique_ptr<Stream::Listener> up_listener_;  // an UpListener
  Stream* down_ = nullptr;
  Stream* up_ = nullptr;
  int refs_ = 1;  // the downstream stream's

  Phase phase_ = Phase::kHeaders;
  std::string method_;
  HeaderList metadata_;
  std::string content_type_;
  std::optional<EventLoop::Clock::time_point> deadline_;
  EventLoop::TimerId deadline_timer_ = 0;
  EventLoop::Clock::time_point started_ = EventLoop::Clock::now();

  rpc::MessageScanner request_scanner_;
  rpc::MessageScanner response_scanner_;
  uint64_t messages_received_ = 0;
  uint64_t messages_sent_ = 0;
  std::string first_;               // the first message, prefix included, while it is read
  bool first_complete_ = false;
  std::string request_held_;        // request bytes not yet handed upstream (not consumed)
  std::string response_held_;       // response bytes not yet handed downstream (not consumed)
  bool client_half_closed_ = false;
  bool client_gone_ = false;
  bool upstream_done_ = false;      // trailers (or failure) seen
  bool response_headers_sent_ = false;
  bool received_response_message_ = false;
  bool status_from_upstream_ = false;  // the final status came in the node's trailers
  bool trailers_sent_ = false;
  bool upstream_end_sent_ = false;
  bool observed_ = false;
  bool upstream_called_ = false;  // OnUpstreamCall reported
  std::optional<rpc::CallStatus> final_status_;  // waits for held response bytes
  bool opening_ = false;     // the pool has not answered Open yet
  uint64_t open_ticket_ = 0;  // its ticket, while opening_

  struct SecondaryCall {
    std::unique_ptr<Stream::Listener> listener;
    Stream* stream = nullptr;
    bool opening = false;
    uint64_t ticket = 0;
    bool finished = false;
    bool end_sent = false;
  };
  std::vector<SecondaryCall> secondaries_;
  size_t secondary_opens_pending_ = 0;
  size_t secondaries_running_ = 0;
  // The upstream's status while the call waits for its secondaries.
  std::optional<rpc::CallStatus> upstream_status_;
  EventLoop::TimerId grace_timer_ = 0;
  // Runs while secondaries hold the request back (an open not answered,
  // a full stream): those still holding it when it fires are cancelled.
  EventLoop::TimerId stall_timer_ = 0;

  Route route_;
  std::shared_ptr<LocalStream> local_stream_;  // route_.local_stream, until it finished
  bool finalized_ = false;
  int64_t held_ = 0;  // last reported to stats
};

}  // namespace praefect::http2
