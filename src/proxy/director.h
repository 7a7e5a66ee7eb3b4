#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/string_ref.h>

#include "common/status_or.h"

// The policy side of the proxy: given a call's method, metadata and first
// request message, say where the call goes. The proxy knows nothing else
// about the call; all domain knowledge (which node, which token, which
// rewrite) lives in the Director.
namespace praefect::proxy {

// What the proxy knows about a call when it asks for a route.
// Every view stays valid until the Director calls `done` (the call is held
// open until then, even if the client goes away).
struct CallInfo {
  // Full method name as on the wire: "/pkg.Service/Method".
  std::string_view method;
  // The client's request metadata as grpc++ received it (keys lower-case,
  // `-bin` values already base64-decoded). Transport headers are included
  // as grpc++ reports them; the proxy never forwards those.
  const std::multimap<grpc::string_ref, grpc::string_ref>* metadata = nullptr;
  // The bytes of the first request message, or nullopt when the client
  // half-closed before sending one.
  std::optional<std::string_view> first_message;
};

// Where and how to forward one call.
struct Route {
  // The upstream to call. Required unless `local_response` is set; channels
  // are shared between calls and owned by whoever dials them (see
  // UpstreamChannelArguments).
  std::shared_ptr<grpc::Channel> channel;

  // Set: the call is answered here, with no upstream: the client gets these
  // bytes as its one response message and then OK (the calls praefect
  // answers itself). `channel`, `first_message`, the metadata edits and
  // `commit` are ignored; `finalizer` is called with OK.
  std::optional<std::string> local_response;

  // Bytes to send upstream as the first request message instead of what the
  // client sent. nullopt forwards the client's first message untouched (or
  // none, when it sent none). Set, it is sent even when the client sent no
  // message at all.
  std::optional<std::string> first_message;

  // Metadata edits, applied to the client's metadata in this order: every
  // key in `drop_metadata` is removed, then every key in `set_metadata`
  // loses its client values and gets the ones listed here (a key listed
  // twice gets both values). Keys are lower-case; `-bin` values are raw
  // bytes. A key or value grpc would refuse, or a transport header
  // (":path", "content-type", "grpc-*", ...), fails the call with INTERNAL.
  std::vector<std::pair<std::string, std::string>> set_metadata;
  std::vector<std::string> drop_metadata;

  // Names the upstream in errors, e.g. `virtual storage "default", node
  // "gitaly-1"`. When the upstream call fails with UNAVAILABLE before any
  // response message arrived (typically: it could not be reached), the
  // client sees "<label>: <grpc's message>".
  std::string label;

  // Called exactly once per Route the proxy receives, with the upstream's
  // final status as the upstream sent it (before the label is added), just
  // before that status is returned to the client. When the upstream call is
  // never made (the client cancelled while the Director was deciding, or the
  // Route is invalid), it is called with the reason instead. Runs on a gRPC
  // thread: it must not block; queue slow work elsewhere. Optional.
  std::function<void(const grpc::Status& upstream_status)> finalizer;

  // Called once when an upstream call was made and has ended, after the
  // finalizer, with the upstream's status. The client's status waits until
  // `done` is called (from any thread, exactly once): `done(std::nullopt)`
  // returns the upstream's status, `done(status)` replaces it. This is where
  // a write is recorded before it is acknowledged (a write whose record
  // fails must not be reported as a success). Must not block; do blocking
  // work elsewhere and call `done` from there. Not called when no upstream
  // call was made. Optional.
  using CommitDone = std::function<void(std::optional<grpc::Status>)>;
  std::function<void(const grpc::Status& upstream_status, CommitDone done)> commit;
};

// Decides the route of each call. Implementations must be thread-safe:
// Direct is called concurrently for different calls.
class Director {
 public:
  using Done = std::function<void(StatusOr<Route>)>;

  virtual ~Director() = default;

  // Called once per call before any request message is read, with the
  // call's method and metadata (`call.first_message` is nullopt). An error
  // ends the call with that status at once, and nothing of the request is
  // read: a client that fails here (no or a wrong token, an unknown method)
  // costs its headers and what the transport's flow-control window lets it
  // send ahead, however large the message it announces. Must not block.
  // The default admits every call.
  [[nodiscard]] virtual Status Admit(const CallInfo& call) {
    (void)call;
    return Status::Ok();
  }

  // Decides where `call` goes and reports it by calling `done` exactly once:
  // a Route to forward the call, or an error Status that the client receives
  // as is (code and message), with no upstream call made.
  //
  // `done` may be called inline (a synchronous director) or later from any
  // thread (a director that does blocking work, e.g. a database lookup, must
  // do it off the gRPC thread that calls Direct and call `done` from there).
  // Direct itself must not block. The call stays open until `done` runs; a
  // Director that drops `done` without calling it fails the call with
  // INTERNAL when the last copy of `done` is destroyed. Calls after the
  // first are ignored.
  virtual void Direct(const CallInfo& call, Done done) = 0;
};

}  // namespace praefect::proxy
