#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status_or.h"
#include "http2/connection.h"
#include "http2/local_stream.h"
#include "http2/session.h"
#include "http2/sockets.h"

// The policy side of the data plane: given a call's method, metadata and
// first request message, say where it goes. The data plane knows nothing
// else about the call; all domain knowledge (which node, which token,
// which rewrite) lives in the Director (coordinator/ for praefect).
namespace praefect::http2 {

// A server the data plane forwards calls to (a Gitaly node). Immutable;
// shared by routes and by every loop's connections to it.
struct Upstream {
  ConnectTarget target;
  // The :authority of requests to it ("host:port", or "localhost" for unix).
  std::string authority;
  // Names it in errors: `virtual storage "default", node "gitaly-1"`.
  std::string label;
  // Null for plain connections; else makes the TLS layer of a new
  // connection (tls:// nodes).
  std::function<StatusOr<std::unique_ptr<SecureLayer>>()> make_secure;
  bool tls() const { return static_cast<bool>(make_secure); }
};

// What the data plane knows of a call when it asks about it. Every view
// stays valid until the Director answers (the call is held open until then,
// even if the client goes away).
struct CallInfo {
  // Full method name as on the wire: "/pkg.Service/Method".
  std::string_view method;
  // The request's headers but the pseudo-headers, as received: names
  // lower-case, values as on the wire (binary metadata base64-encoded).
  const HeaderList* metadata = nullptr;
  // The first request message (without its 5-byte prefix), or nullopt when
  // the client half-closed before sending one. Unset in Admit.
  std::optional<std::string_view> first_message;

  // The value of metadata `name`, or nullopt.
  std::optional<std::string_view> Get(std::string_view name) const {
    const std::string* v = metadata == nullptr ? nullptr : FindHeader(*metadata, name);
    return v == nullptr ? std::nullopt : std::optional<std::string_view>(*v);
  }
};

class ProxyCall;
class EventLoop;

// Ends a proxied call from outside, from any thread: the call fails with the
// given status as if its deadline had passed (every node's stream
// cancelled, the finalizer and no commit). Harmless once the call is over.
class CallAbort : public std::enable_shared_from_this<CallAbort> {
 public:
  void Abort(const Status& why);

 private:
  friend class ProxyCall;
  void Attach(EventLoop* loop, ProxyCall* call);  // on the call's loop
  void Detach();                                  // on the call's loop, as it dies
  std::mutex mu_;
  EventLoop* loop_ = nullptr;  // GUARDED_BY(mu_)
  ProxyCall* call_ = nullptr;  // GUARDED_BY(mu_)
  std::optional<Status> early_;  // GUARDED_BY(mu_): Abort before Attach
};

// Where and how to forward one call.
struct Route {
  // The upstream to call. Required unless `local_response` is set.
  std::shared_ptr<const Upstream> upstream;

  // Set: the call is answered here, with no upstream: the client gets these
  // bytes as its response message, then each of `more_local_responses` (a
  // server stream's further messages), then OK. `upstream`,
  // `first_message`, the metadata edits and `commit` are ignored;
  // `finalizer` is called with OK. With `keep_open`, the call then stays
  // open, without trailers, until the client ends it or the server stops
  // (a health Watch).
  std::optional<std::string> local_response;
  std::vector<std::string> more_local_responses;
  bool keep_open = false;

  // Set (and `local_response` not): the call is answered here with the
  // messages a producer pushes into this stream as it makes them, then
  // the status it finishes with. Ignored like `local_response` is: the
  // upstream fields.
  std::shared_ptr<LocalStream> local_stream;

  // Bytes to send upstream as the first request message instead of what the
  // client sent. nullopt forwards the client's first message untouched (or
  // none, when it sent none).
  std::optional<std::string> first_message;

  // Metadata edits, applied to the client's metadata in this order: every
  // key in `drop_metadata` is removed, then every key in `set_metadata`
  // loses its client values and gets the ones listed here. Keys lower-case;
  // values of "-bin" keys are raw bytes (the data plane encodes them).
  std::vector<std::pair<std::string, std::string>> set_metadata;
  std::vector<std::string> drop_metadata;

  // Names the upstream in errors. When the upstream call fails with
  // UNAVAILABLE before any response message arrived, the client sees
  // "<label>: <message>".
  std::string label;

  // Fields for the call's access log line (virtual_storage, relative_path,
  // storage...), as the router learned them.
  std::vector<std::pair<std::string, std::string>> log_fields;

  // Called once per route, on the data plane's loop, with the upstream's
  // final status (before the label is added), or with why the upstream call
  // was never made or was abandoned. Must not block.
  std::function<void(const Status& upstream_status)> finalizer;

  // Nodes that take the same request stream as `upstream` (a transaction's
  // secondary voters), each with its own first message and metadata: their
  // responses are read and dropped, only the upstream's reach the client.
  // A secondary's failure does not fail the call. When the call fails, the
  // secondaries are cancelled; when the upstream ends, the call waits for
  // those `wait_for_secondary` names at most `secondary_grace`, and cancels
  // the others (unset: waits for all after an OK, none after a failure). `commit` runs once every
  // secondary ended, and `secondary_finished` heard each one's status.
  struct Secondary {
    std::shared_ptr<const Upstream> upstream;
    std::string label;
    std::string first_message;
    // Replaces the route's set_metadata for this node; drop_metadata applies.
    std::vector<std::pair<std::string, std::string>> set_metadata;
  };
  std::vector<Secondary> secondaries;
  // Called on the loop, once per secondary, with its final status (or why
  // it was never called or was cancelled). Must not block.
  std::function<void(size_t index, const Status& status)> secondary_finished;
  std::function<bool(size_t index)> wait_for_secondary;
  std::chrono::milliseconds secondary_grace{5000};
  // A secondary that holds the request stream back this long (its stream
  // not opened, or its node not reading) is cancelled instead of stalling
  // the call.
  std::chrono::milliseconds secondary_stall{2000};

  // Set: the Director may end the call with it (CallAbort::Abort).
  std::shared_ptr<CallAbort> abort;

  // Called once when an upstream call ended, after the finalizer, with the
  // upstream's status. The client's status waits until `done` is called
  // (from any thread, exactly once): `done(std::nullopt)` passes the
  // upstream's status, `done(status)` replaces it. Must not block. Optional.
  using CommitDone = std::function<void(std::optional<Status>)>;
  std::function<void(const Status& upstream_status, CommitDone done)> commit;
};

// Decides the route of each call. Thread-safe: called concurrently from
// every loop for different calls.
class Director {
 public:
  using Done = std::function<void(StatusOr<Route>)>;
  virtual ~Director() = default;

  // Before anything of the request is read: an error ends the call with
  // that status at once (authentication, unknown methods). Must not block.
  [[nodiscard]] virtual Status Admit(const CallInfo& call) {
    (void)call;
    return Status::Ok();
  }

  // Decides where `call` goes and says so by calling `done` exactly once,
  // inline or later from any thread: a Route, or an error the client gets
  // as is. Must not block. A Director that drops `done` unanswered fails the
  // call with INTERNAL.
  virtual void Direct(const CallInfo& call, Done done) = 0;
};

}  // namespace praefect::http2
