#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <vector>

#include "http2/director.h"
#include "http2/event_loop.h"
#include "http2/session.h"
#include "http2/sockets.h"

// One loop's HTTP/2 connections to the upstreams (nodes): opened on demand,
// shared by every call of the loop, more than one when a node's stream limit
// is reached; reconnected within a second of a failure; closed when the
// node says GOAWAY and its streams are done.
namespace praefect::http2 {

struct UpstreamPoolOptions {
  // Toward the nodes: frames up to 1 MiB (a node that sends them, as gRPC
  // C core does, costs praefect a fraction per byte of 16 KiB frames), and
  // 256 KiB stream windows (fewer WINDOW_UPDATE round trips per MiB). The
  // connection window is not a limit of its own: one connection to a node
  // carries every client's calls, so streams whose clients stop reading
  // must not exhaust it for the others (200 of them would, at 256 KiB each,
  // with 16 MiB). What a node may send unread is bounded per stream, by
  // the stream window.
  SessionOptions session = [] {
    SessionOptions o;
    o.max_frame_size = 1024 * 1024;
    o.initial_stream_window = 256 * 1024;
    o.connection_window = INT32_MAX;
    return o;
  }();
  std::chrono::milliseconds connect_timeout{5000};
  // After a failed connection attempt, calls fail at once with its error
  // for this long (doubling up to the maximum), as gRPC's backoff does.
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{1000};
  // PING a connection that carried no frame for this long while it has
  // streams; close it when no answer comes within keepalive_timeout.
  std::chrono::milliseconds keepalive_time{20000};
  std::chrono::milliseconds keepalive_timeout{10000};
};

// Not thread-safe: on its loop only.
class UpstreamPool {
 public:
  // Answers an Open: the stream, or why none could be opened.
  using Opened = std::function<void(StatusOr<Stream*> stream)>;

  // REQUIRES: `resolver` outlives the pool.
  UpstreamPool(EventLoop* loop, Resolver* resolver, UpstreamPoolOptions options);
  ~UpstreamPool();
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Opens a stream to `upstream` with `headers`, now if a connection can
  // take it, else once one is up. `done` is called exactly once, on the
  // loop (possibly inline), unless Cancel(ticket) came first.
  // The header strings are copied when the open has to wait.
  uint64_t Open(const std::shared_ptr<const Upstream>& upstream, const HeaderRefs& headers, bool end_stream,
                Stream::Listener* listener, Opened done);
  void Cancel(uint64_t ticket);

  // Graceful stop: GOAWAY on every connection; idle ones close.
  void Shutdown();
  size_t connections() const;

 private:
  class UpstreamConnection;
  struct Pending {
    uint64_t ticket;
    HeaderList headers;
    bool end_stream;
    Stream::Listener* listener;
    Opened done;
  };
  struct Entry {
    std::shared_ptr<const Upstream> upstream;
    std::vector<UpstreamConnection*> connections;  // owned via owned_
    std::deque<Pending> pending;
    bool connecting = false;
    Status last_failure;
    EventLoop::Clock::time_point fail_fast_until{};
    std::chrono::milliseconds backoff{0};
  };

  Entry& EntryFor(const std::shared_ptr<const Upstream>& upstream);
  void Connect(Entry& entry);
  void Connected(Entry& entry, StatusOr<int> fd);
  void ServePending(Entry& entry);
  void FailPending(Entry& entry, const Status& why);
  void Forget(UpstreamConnection* connection);

  EventLoop* const loop_;
  Resolver* const resolver_;
  const UpstreamPoolOptions options_;
  uint64_t next_ticket_ = 1;
  std::unordered_map<const Upstream*, Entry> entries_;
  std::unordered_map<const Upstream*, std::unique_ptr<ConnectAttempt>> attempts_;
  std::vector<std::unique_ptr<UpstreamConnection>> owned_;
  bool shutting_down_ = false;
};

}  // namespace praefect::http2
