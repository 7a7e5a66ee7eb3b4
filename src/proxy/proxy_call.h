#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/client_callback.h>

#include "proxy/director.h"
#include "proxy/proxy.h"

namespace praefect::proxy::internal {

// One proxied call: the client-facing server reactor and the upstream client
// reactor, tied by a state machine under one mutex.
//
// Concurrency: grpc invokes the reactions of both sides, and the Director
// invokes its answer, concurrently from arbitrary threads. Every handler
// decides under mu_ what to do and starts the grpc operations after
// releasing it: a grpc operation may run reactions inline before it
// returns, and those lock mu_.
//
// Lifetime: owns itself. References are held by the server reactor (until
// its OnDone), by the upstream reactor (from the upstream call's creation
// until its OnDone) and by a pending Director answer; the last one deletes
// the call. Upstream operations started outside upstream reactions are
// covered by holds (one per direction), released when that direction has
// nothing more to do.
class ProxyCall {
 public:
  ProxyCall(std::shared_ptr<Proxy::Shared> shared, grpc::GenericCallbackServerContext* context);
  ~ProxyCall();

  ProxyCall(const ProxyCall&) = delete;
  ProxyCall& operator=(const ProxyCall&) = delete;

  // Asks the Director to admit the call (ending it at once if refused, with
  // nothing read), else starts reading the first message; returns the
  // reactor grpc drives.
  // (Forwarding: proxy_call.cc; Director and upstream start: proxy_call_route.cc.)
  grpc::ServerGenericBidiReactor* Start();

 private:
  class ClientSide final : public grpc::ServerGenericBidiReactor {
   public:
    explicit ClientSide(ProxyCall* call) : call_(call) {}
    void OnReadDone(bool ok) override { call_->OnClientReadDone(ok); }
    void OnWriteDone(bool ok) override { call_->OnClientWriteDone(ok); }
    void OnSendInitialMetadataDone(bool ok) override { call_->OnClientMetadataSent(ok); }
    void OnCancel() override { call_->OnClientCancel(); }
    void OnDone() override { call_->Unref(); }

   private:
    ProxyCall* const call_;
  };

  class UpstreamSide final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit UpstreamSide(ProxyCall* call) : call_(call) {}
    void OnReadInitialMetadataDone(bool ok) override { call_->OnUpstreamMetadata(ok); }
    void OnReadDone(bool ok) override { call_->OnUpstreamReadDone(ok); }
    void OnWriteDone(bool ok) override { call_->OnUpstreamWriteDone(ok); }
    void OnDone(const grpc::Status& status) override { call_->OnUpstreamDone(status); }

   private:
    ProxyCall* const call_;
  };

  class DirectorReply;

  enum class Phase { kFirstRead, kDirecting, kForwarding, kFinishing };
  // Request direction (client → upstream).
  enum class Request { kClientReading, kUpstreamWriting, kClosed };
  // Response direction (upstream → client). kParked: a response waits for
  // the upstream's initial metadata to be passed on first.
  enum class Response { kUpstreamReading, kParked, kClientWriting, kClosed };
  // Initial metadata towards the client: not yet known, being sent, or no
  // longer in the way of writes.
  enum class Headers { kAwaitingUpstream, kSending, kOpen };

  // What a handler decided; run after mu_ is released, in a fixed order.
  struct Actions {
    bool upstream_cancel = false;
    bool client_send_metadata = false;
    bool client_read = false;
    bool client_write = false;
    bool client_finish = false;
    bool upstream_write = false;
    bool upstream_writes_done = false;
    bool upstream_read = false;
    int upstream_release_holds = 0;
  };

  void OnClientReadDone(bool ok);
  void OnClientWriteDone(bool ok);
  void OnClientMetadataSent(bool ok);
  void OnClientCancel();
  void OnUpstreamMetadata(bool ok);
  void OnUpstreamReadDone(bool ok);
  void OnUpstreamWriteDone(bool ok);
  void OnUpstreamDone(const grpc::Status& status);
  void OnDirected(StatusOr<Route> route);
  // The Route's commit answered: finish the call.
  void OnCommitted(std::optional<grpc::Status> replacement);

  // Asks the Director; `first` is the first message, if any.
  void Direct(std::optional<std::string_view> first);
  // Ends the call with `status` before any upstream call was made; calls
  // `finalizer` (if any) with it first.
  void FinishEarly(grpc::Status status, std::function<void(const grpc::Status&)> finalizer);
  // Ends the call with `response` as its only message and OK, no upstream
  // call made (Route::local_response); calls `finalizer` (if any) first.
  void FinishLocal(std::string response, std::function<void(const grpc::Status&)> finalizer);
  // Starts the upstream call for a route whose metadata is validated.
  void StartUpstream(Route route, std::vector<std::pair<std::string, std::string>> metadata);

  // Whether request_ is over the size limit; if so, the status to fail with.
  std::optional<grpc::Status> CheckRequestSize() const;
  void HoldRequest(int64_t bytes);     // REQUIRES: mu_ held
  void ReleaseRequest();               // REQUIRES: mu_ held
  void HoldResponse(int64_t bytes);    // REQUIRES: mu_ held
  void ReleaseResponse();              // REQUIRES: mu_ held
  void FlushParked(Actions* a);        // REQUIRES: mu_ held, headers_ == kOpen
  void Run(const Actions& a);
  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref();

  const std::shared_ptr<Proxy::Shared> shared_;
  grpc::GenericCallbackServerContext* const server_context_;  // Valid until client_ OnDone.
  ClientSide client_{this};
  UpstreamSide upstream_{this};
  std::atomic<int> refs_{1};  // The client side's.

  // Messages in flight, one per direction. request_ carries the first
  // message from the client's first read to the upstream's first write.
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  // The first message as the Director sees it: a slice of request_, or a
  // flattened copy when it arrived in several slices.
  grpc::Slice first_slice_;
  std::string first_flat_;

  // Set up before the upstream call starts, then only used by grpc.
  std::shared_ptr<grpc::Channel> channel_;
  grpc::ClientContext upstream_context_;

  std::mutex mu_;
  Phase phase_ = Phase::kFirstRead;                   // GUARDED_BY(mu_)
  Request request_state_ = Request::kClientReading;   // GUARDED_BY(mu_)
  Response response_state_ = Response::kClosed;       // GUARDED_BY(mu_)
  Headers headers_ = Headers::kAwaitingUpstream;      // GUARDED_BY(mu_)
  bool cancelled_ = false;             // Client gone or cancelled. GUARDED_BY(mu_)
  bool client_half_closed_ = false;    // GUARDED_BY(mu_)
  bool upstream_ended_ = false;        // Upstream's response stream ended. GUARDED_BY(mu_)
  bool received_response_ = false;     // GUARDED_BY(mu_)
  bool finish_parked_ = false;         // Finish waits for headers. GUARDED_BY(mu_)
  int64_t request_held_ = -1;          // Bytes held, -1 when none. GUARDED_BY(mu_)
  int64_t response_held_ = -1;         // GUARDED_BY(mu_)
  grpc::Status final_status_;          // GUARDED_BY(mu_)
  // Set when the proxy fails a forwarded call itself (a request over the
  // size limit); replaces the upstream's status. GUARDED_BY(mu_)
  std::optional<grpc::Status> abort_status_;
  std::string label_;                  // GUARDED_BY(mu_)
  std::function<void(const grpc::Status&)> finalizer_;  // GUARDED_BY(mu_)
  std::function<void(const grpc::Status&, Route::CommitDone)> commit_;  // GUARDED_BY(mu_)
};

}  // namespace praefect::proxy::internal
