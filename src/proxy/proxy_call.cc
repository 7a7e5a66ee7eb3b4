#include "proxy/proxy_call.h"

#include <string>
#include <utility>
#include <vector>

#include "proxy/metadata.h"
#include "proxy/shared.h"

namespace praefect::proxy::internal {
namespace {

int64_t Size(const grpc::ByteBuffer& b) { return static_cast<int64_t>(b.Length()); }

}  // namespace

ProxyCall::ProxyCall(std::shared_ptr<Proxy::Shared> shared, grpc::GenericCallbackServerContext* context)
    : shared_(std::move(shared)), server_context_(context) {
  shared_->calls_started.fetch_add(1, std::memory_order_relaxed);
  shared_->calls_active.fetch_add(1, std::memory_order_relaxed);
}

ProxyCall::~ProxyCall() {
  // Messages still held when the call ends (a read that completed after the
  // other side was gone) are released from the gauges.
  if (request_held_ >= 0) shared_->Release(request_held_);
  if (response_held_ >= 0) shared_->Release(response_held_);
  shared_->calls_active.fetch_sub(1, std::memory_order_relaxed);
}

grpc::ServerGenericBidiReactor* ProxyCall::Start() {
  CallInfo info;
  info.method = server_context_->method();
  info.metadata = &server_context_->client_metadata();
  Status admitted = shared_->director->Admit(info);
  if (!admitted.ok()) {
    grpc::Status status(static_cast<grpc::StatusCode>(admitted.code()), admitted.message());
    {
      std::lock_guard lock(mu_);
      phase_ = Phase::kFinishing;
      request_state_ = Request::kClosed;
      final_status_ = status;
    }
    client_.Finish(std::move(status));
    return &client_;
  }
  client_.StartRead(&request_);
  return &client_;
}

void ProxyCall::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

std::optional<grpc::Status> ProxyCall::CheckRequestSize() const {
  const int64_t limit = shared_->max_message_bytes;
  const int64_t size = Size(request_);
  if (limit < 0 || size <= limit) return std::nullopt;
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "request message of " + std::to_string(size) + " bytes to " + server_context_->method() +
                          " is larger than the limit of " + std::to_string(limit) + " bytes per message" +
                          shared_->max_message_hint);
}

void ProxyCall::HoldRequest(int64_t bytes) {
  request_held_ = bytes;
  shared_->Hold(bytes);
}
void ProxyCall::ReleaseRequest() {
  if (request_held_ < 0) return;
  shared_->Release(request_held_);
  request_held_ = -1;
}
void ProxyCall::HoldResponse(int64_t bytes) {
  response_held_ = bytes;
  shared_->Hold(bytes);
}
void ProxyCall::ReleaseResponse() {
  if (response_held_ < 0) return;
  shared_->Release(response_held_);
  response_held_ = -1;
}

void ProxyCall::Run(const Actions& a) {
  if (a.upstream_cancel) upstream_context_.TryCancel();
  if (a.client_send_metadata) client_.StartSendInitialMetadata();
  if (a.client_read) client_.StartRead(&request_);
  if (a.client_write) client_.StartWrite(&response_);
  if (a.upstream_write) upstream_.StartWrite(&request_);
  if (a.upstream_writes_done) upstream_.StartWritesDone();
  if (a.upstream_read) upstream_.StartRead(&response_);
  if (a.client_finish) {
    grpc::Status status;
    {
      std::lock_guard lock(mu_);
      status = final_status_;
    }
    client_.Finish(std::move(status));
  }
  // Last: releasing the final hold may end the upstream call.
  for (int i = 0; i < a.upstream_release_holds; ++i) upstream_.RemoveHold();
}

// ---- First message ---------------------------------------------------------

void ProxyCall::OnClientReadDone(bool ok) {
  Actions a;
  bool direct = false;
  bool has_first = false;
  std::optional<grpc::Status> too_large;
  {
    std::lock_guard lock(mu_);
    switch (phase_) {
      case Phase::kFirstRead:
        if (ok && (too_large = CheckRequestSize())) {
          request_.Clear();
          phase_ = Phase::kFinishing;
          request_state_ = Request::kClosed;
          final_status_ = *too_large;
          a.client_finish = true;
        } else if (ok) {
          HoldRequest(Size(request_));
          has_first = true;
          phase_ = Phase::kDirecting;
          direct = true;
        } else if (server_context_->IsCancelled()) {
          phase_ = Phase::kFinishing;
          final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call before sending a request");
          a.client_finish = true;
        } else {
          client_half_closed_ = true;
          phase_ = Phase::kDirecting;
          direct = true;
        }
        break;
      case Phase::kForwarding:
      case Phase::kFinishing:
        if (request_state_ != Request::kClientReading) {
          // The request direction was closed while this read was pending
          // (the upstream ended the call): the message is discarded.
          request_.Clear();
          break;
        }
        if (!ok) {
          request_state_ = Request::kClosed;
          a.upstream_release_holds = 1;
          // A read fails both on a half-close and when the call broke. grpc++
          // marks the context cancelled before OnReadDone in the second case;
          // a broken request stream must never reach the upstream as complete.
          if (cancelled_ || server_context_->IsCancelled()) {
            cancelled_ = true;
            a.upstream_cancel = true;
          } else {
            client_half_closed_ = true;
            a.upstream_writes_done = true;
          }
        } else if (cancelled_) {
          request_.Clear();
          request_state_ = Request::kClosed;
          a.upstream_release_holds = 1;
        } else if ((too_large = CheckRequestSize())) {
          request_.Clear();
          request_state_ = Request::kClosed;
          abort_status_ = *too_large;
          cancelled_ = true;  // Nothing more goes to the client but the status.
          a.upstream_cancel = true;
          a.upstream_release_holds = 1;
        } else {
          HoldRequest(Size(request_));
          request_state_ = Request::kUpstreamWriting;
          a.upstream_write = true;
        }
        break;
      case Phase::kDirecting:
        break;  // No read is pending while the Director decides.
    }
  }
  if (direct) {
    // Only this thread touches request_ and the views until the Director
    // answers, so the copy (if any) is made outside mu_.
    std::optional<std::string_view> first;
    if (has_first && request_.TrySingleSlice(&first_slice_).ok()) {
      first = std::string_view(reinterpret_cast<const char*>(first_slice_.begin()), first_slice_.size());
    } else if (has_first) {
      std::vector<grpc::Slice> slices;
      (void)request_.Dump(&slices);
      first_flat_.reserve(request_.Length());
      for (const grpc::Slice& s : slices) first_flat_.append(reinterpret_cast<const char*>(s.begin()), s.size());
      first = first_flat_;
    }
    Direct(first);
  }
  Run(a);
}

// ---- Forwarding ---------------------------------------------------------

void ProxyCall::OnUpstreamWriteDone(bool ok) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    ReleaseRequest();
    request_.Clear();  // grpc is done with it; do not keep its memory while waiting.
    if (!ok || upstream_ended_ || cancelled_) {
      // The upstream call is over (its status will say why) or the client
      // is gone: nothing more goes upstream.
      request_state_ = Request::kClosed;
      a.upstream_release_holds = 1;
    } else if (client_half_closed_) {
      request_state_ = Request::kClosed;
      a.upstream_writes_done = true;
      a.upstream_release_holds = 1;
    } else {
      request_state_ = Request::kClientReading;
      a.client_read = true;
    }
  }
  Run(a);
}

void ProxyCall::OnUpstreamMetadata(bool ok) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (ok && !cancelled_) {
      for (auto& [key, value] : ResponseMetadata(upstream_context_.GetServerInitialMetadata())) {
        server_context_->AddInitialMetadata(key, value);
      }
      headers_ = Headers::kSending;
      a.client_send_metadata = true;
    } else {
      // Trailers only (or a failed call): the status carries everything.
      headers_ = Headers::kOpen;
      FlushParked(&a);
    }
  }
  Run(a);
}

void ProxyCall::OnClientMetadataSent(bool /*ok*/) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    headers_ = Headers::kOpen;
    FlushParked(&a);
  }
  Run(a);
}

void ProxyCall::FlushParked(Actions* a) {
  if (response_state_ == Response::kParked) {
    if (cancelled_) {
      ReleaseResponse();
      response_state_ = Response::kClosed;
      a->upstream_release_holds += 1;
    } else {
      response_state_ = Response::kClientWriting;
      a->client_write = true;
    }
  }
  if (finish_parked_) {
    finish_parked_ = false;
    a->client_finish = true;
  }
}

void ProxyCall::OnUpstreamReadDone(bool ok) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (ok) {
      received_response_ = true;
      HoldResponse(Size(response_));
      if (cancelled_) {
        ReleaseResponse();
        response_.Clear();
        response_state_ = Response::kClosed;
        a.upstream_release_holds = 1;
      } else if (headers_ == Headers::kOpen) {
        response_state_ = Response::kClientWriting;
        a.client_write = true;
      } else {
        response_state_ = Response::kParked;
      }
    } else {
      // The upstream has ended the call; its status follows in OnDone once
      // both holds are released. A client read still pending is abandoned.
      upstream_ended_ = true;
      response_state_ = Response::kClosed;
      a.upstream_release_holds = 1;
      if (request_state_ == Request::kClientReading) {
        request_state_ = Request::kClosed;
        a.upstream_release_holds += 1;
      }
    }
  }
  Run(a);
}

void ProxyCall::OnClientWriteDone(bool ok) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    ReleaseResponse();
    response_.Clear();  // grpc is done with it; do not keep its memory while waiting.
    if (!ok) {
      // The client is gone; OnCancel follows, but do not wait for it.
      cancelled_ = true;
      a.upstream_cancel = true;
    }
    if (cancelled_) {
      response_state_ = Response::kClosed;
      a.upstream_release_holds = 1;
    } else {
      response_state_ = Response::kUpstreamReading;
      a.upstream_read = true;
    }
  }
  Run(a);
}

void ProxyCall::OnClientCancel() {
  Actions a;
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
    a.upstream_cancel = phase_ == Phase::kForwarding;
  }
  Run(a);
}

void ProxyCall::OnUpstreamDone(const grpc::Status& status) {
  Actions a;
  std::function<void(const grpc::Status&)> finalizer;
  std::function<void(const grpc::Status&, Route::CommitDone)> commit;
  {
    std::lock_guard lock(mu_);
    phase_ = Phase::kFinishing;
    for (auto& [key, value] : ResponseMetadata(upstream_context_.GetServerTrailingMetadata())) {
      server_context_->AddTrailingMetadata(key, value);
    }
    if (abort_status_.has_value()) {
      final_status_ = *abort_status_;
    } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !received_response_ && !label_.empty()) {
      final_status_ = grpc::Status(status.error_code(), label_ + ": " + status.error_message(), status.error_details());
    } else {
      final_status_ = status;
    }
    commit = std::move(commit_);
    if (commit) {
      // The client's status waits for the commit (OnCommitted).
    } else if (headers_ == Headers::kSending) {
      finish_parked_ = true;
    } else {
      a.client_finish = true;
    }
    finalizer = std::move(finalizer_);
  }
  if (finalizer) finalizer(status);
  if (commit) {
    Ref();  // Released by OnCommitted.
    auto answered = std::make_shared<std::atomic<bool>>(false);
    commit(status, [this, answered](std::optional<grpc::Status> replacement) {
      if (answered->exchange(true)) return;  // Only the first answer counts.
      OnCommitted(std::move(replacement));
    });
  }
  Run(a);
  Unref();
}

void ProxyCall::OnCommitted(std::optional<grpc::Status> replacement) {
  Actions a;
  {
    std::lock_guard lock(mu_);
    if (replacement.has_value()) final_status_ = std::move(*replacement);
    if (headers_ == Headers::kSending) {
      finish_parked_ = true;
    } else {
      a.client_finish = true;
    }
  }
  Run(a);
  Unref();
}

}  // namespace praefect::proxy::internal
