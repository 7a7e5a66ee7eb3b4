#include "proxy/proxy_call.h"

#include <functional>
#include <string>
#include <utility>

#include <grpcpp/generic/generic_stub.h>

#include "proxy/metadata.h"
#include "proxy/shared.h"

// The routing part of ProxyCall: asking the Director, refusing bad routes,
// starting the upstream call.
namespace praefect::proxy::internal {
namespace {

int64_t Size(const grpc::ByteBuffer& b) { return static_cast<int64_t>(b.Length()); }

grpc::Status ToGrpc(const Status& st) {
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message());
}

// Hands `bytes` to grpc without copying them again; grpc frees them when
// the last reference to the slice goes.
grpc::ByteBuffer OwnedBuffer(std::string bytes) {
  auto* owned = new std::string(std::move(bytes));
  grpc::Slice slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// The `done` handed to the Director. Copies share one reply; the first call
// answers, later ones are ignored, and dropping every copy unanswered
// answers INTERNAL so that the call cannot hang.
class ProxyCall::DirectorReply {
 public:
  explicit DirectorReply(ProxyCall* call) : call_(call) {}
  ~DirectorReply() {
    if (!answered_.exchange(true)) {
      call_->OnDirected(Internal("the director for " + call_->server_context_->method() +
                                 " dropped the call without answering (a bug in the director)"));
    }
  }
  void Answer(StatusOr<Route> route) {
    if (answered_.exchange(true)) return;
    call_->OnDirected(std::move(route));
  }

 private:
  ProxyCall* const call_;
  std::atomic<bool> answered_{false};
};

void ProxyCall::Direct(std::optional<std::string_view> first) {
  Ref();  // Released by OnDirected.
  auto reply = std::make_shared<DirectorReply>(this);
  CallInfo info;
  info.method = server_context_->method();
  info.metadata = &server_context_->client_metadata();
  info.first_message = first;
  shared_->director->Direct(info, [reply = std::move(reply)](StatusOr<Route> route) mutable {
    reply->Answer(std::move(route));
  });
}

void ProxyCall::OnDirected(StatusOr<Route> route) {
  // The Director's views of the first message end with its answer; a
  // flattened copy is not kept for the rest of the call.
  first_flat_ = std::string();
  first_slice_ = grpc::Slice();
  const std::string& method = server_context_->method();
  if (!route.ok()) {
    FinishEarly(ToGrpc(route.status()), nullptr);
  } else if (route->local_response.has_value()) {
    FinishLocal(std::move(*route->local_response), std::move(route->finalizer));
  } else if (route->channel == nullptr) {
    FinishEarly(ToGrpc(Internal("the director's route for " + method + " names no upstream channel")),
                std::move(route->finalizer));
  } else {
    StatusOr<Metadata> metadata = UpstreamMetadata(server_context_->client_metadata(), *route, method);
    if (!metadata.ok()) {
      FinishEarly(ToGrpc(metadata.status()), std::move(route->finalizer));
    } else {
      StartUpstream(std::move(route).value(), std::move(metadata).value());
    }
  }
  Unref();
}

void ProxyCall::FinishEarly(grpc::Status status, std::function<void(const grpc::Status&)> finalizer) {
  {
    std::lock_guard lock(mu_);
    phase_ = Phase::kFinishing;
    request_state_ = Request::kClosed;
    ReleaseRequest();
    if (cancelled_) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call while it was being routed");
    }
    final_status_ = status;
  }
  if (finalizer) finalizer(status);
  Actions a;
  a.client_finish = true;
  Run(a);
}

void ProxyCall::FinishLocal(std::string response, std::function<void(const grpc::Status&)> finalizer) {
  grpc::Status status = grpc::Status::OK;
  bool cancelled = false;
  {
    std::lock_guard lock(mu_);
    phase_ = Phase::kFinishing;
    request_state_ = Request::kClosed;
    ReleaseRequest();
    cancelled = cancelled_;
    if (cancelled) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call while it was being answered");
    } else {
      response_ = OwnedBuffer(std::move(response));
    }
    final_status_ = status;
  }
  if (finalizer) finalizer(status);
  if (cancelled) {
    client_.Finish(std::move(status));
  } else {
    // No OnWriteDone follows a StartWriteAndFinish; response_ lives until
    // the call is deleted, after OnDone.
    client_.StartWriteAndFinish(&response_, grpc::WriteOptions(), status);
  }
}

void ProxyCall::StartUpstream(Route route, Metadata metadata) {
  for (auto& [key, value] : metadata) upstream_context_.AddMetadata(key, value);
  upstream_context_.set_deadline(server_context_->raw_deadline());
  channel_ = std::move(route.channel);

  bool send_first = false;
  bool forwarding = false;
  std::function<void(const grpc::Status&)> cancelled_finalizer;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) {
      cancelled_finalizer = std::move(route.finalizer);
    } else {
      forwarding = true;
      if (route.first_message.has_value()) {
        ReleaseRequest();
        request_ = OwnedBuffer(std::move(*route.first_message));
        HoldRequest(Size(request_));
        send_first = true;
      } else {
        send_first = request_held_ >= 0;  // The client's own first message.
      }
      phase_ = Phase::kForwarding;
      request_state_ = send_first ? Request::kUpstreamWriting : Request::kClosed;
      response_state_ = Response::kUpstreamReading;
      label_ = std::move(route.label);
      finalizer_ = std::move(route.finalizer);
      commit_ = std::move(route.commit);
    }
  }
  if (!forwarding) {
    FinishEarly(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call while it was being routed"),
                std::move(cancelled_finalizer));
    return;
  }

  Ref();  // The upstream side's; released by OnUpstreamDone.
  grpc::GenericStub stub(channel_);
  stub.PrepareBidiStreamingCall(&upstream_context_, server_context_->method(), grpc::StubOptions(), &upstream_);
  // Holds: one for the request direction, one for the response direction;
  // each is released when its direction has nothing more to do.
  upstream_.AddMultipleHolds(send_first ? 2 : 1);
  if (send_first) {
    upstream_.StartWrite(&request_);
  } else {
    upstream_.StartWritesDone();
  }
  upstream_.StartRead(&response_);
  upstream_.StartCall();
}

}  // namespace praefect::proxy::internal
