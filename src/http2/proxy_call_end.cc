// ProxyCall's ending: the client's status (trailers, or a trailers-only
// response), failing a call, the deadline, the client going away, and what
// is reported of a finished call. The rest of the call is proxy_call.cc.
#include "http2/proxy_call.h"

namespace praefect::http2 {

void ProxyCall::SendTrailers(rpc::CallStatus status) {
  if (trailers_sent_) return;
  // A node that could not be reached, or whose stream broke, is named; a
  // status the node sent itself reaches the client unchanged.
  if (status.code == StatusCode::kUnavailable && !status_from_upstream_ && !received_response_message_ &&
      !route_.label.empty() && status.message.rfind(route_.label, 0) != 0)
    status.message = route_.label + ": " + status.message;
  if (client_gone_ || down_ == nullptr) {
    phase_ = Phase::kDone;
    Observe(status.code, status.message);
    return;
  }
  if (!response_held_.empty()) {
    final_status_ = std::move(status);  // after the held bytes (MoveResponseBytes)
    return;
  }
  trailers_sent_ = true;
  phase_ = Phase::kDone;
  if (deadline_timer_ != 0) {
    loop_->CancelTimer(deadline_timer_);
    deadline_timer_ = 0;
  }
  Observe(status.code, status.message);
  down_->SendTrailers(rpc::TrailersFor(status, response_headers_sent_));
}

void ProxyCall::Fail(const Status& status) {
  if (trailers_sent_ || phase_ == Phase::kDone) return;
  if (opening_) {
    pool_->Cancel(open_ticket_);
    opening_ = false;
    open_ticket_ = 0;
    Unref();  // the pending open's
  }
  if (up_ != nullptr) up_->Reset(kCancel);
  if (local_stream_ != nullptr) local_stream_->Cancel();  // its producer stops; PullLocal ends it
  phase_ = Phase::kDone;  // the secondaries' ends conclude nothing
  CancelSecondaries(false, Cancelled("the call failed: " + status.message()));
  Finalize(status);
  response_held_.clear();
  final_status_.reset();
  rpc::CallStatus st;
  st.code = status.code();
  st.message = status.message();
  SendTrailers(std::move(st));
  phase_ = Phase::kDone;
}

void ProxyCall::OnDeadline() {
  if (phase_ == Phase::kDone) return;
  Fail(DeadlineExceeded("deadline exceeded: the call took longer than the client's grpc-timeout"));
}

void ProxyCall::OnDownstreamClosed(uint32_t error_code) {
  down_ = nullptr;
  if (local_stream_ != nullptr) local_stream_->Cancel();
  request_held_.clear();
  response_held_.clear();
  first_.clear();
  if (!trailers_sent_) {
    client_gone_ = true;
    (void)error_code;
    if (options_->stats != nullptr) options_->stats->calls_left_by_client.fetch_add(1, std::memory_order_relaxed);
    if (deadline_timer_ != 0) {
      loop_->CancelTimer(deadline_timer_);
      deadline_timer_ = 0;
    }
    if (opening_) {
      pool_->Cancel(open_ticket_);
      opening_ = false;
      open_ticket_ = 0;
      Finalize(Cancelled("the client cancelled the call while it was being routed"));
      Unref();  // the pending open's
    }
    if (up_ != nullptr) up_->Reset(kCancel);  // its close finalizes (CANCELLED)
    CancelSecondaries(false, Cancelled("the client cancelled the call"));
    if (phase_ != Phase::kDirecting && up_ == nullptr && phase_ != Phase::kCommitting) phase_ = Phase::kDone;
    Observe(StatusCode::kCancelled, "the client cancelled the call");
  }
  Unref();
}

void ProxyCall::Finalize(const Status& status) {
  if (finalized_) return;
  finalized_ = true;
  if (route_.finalizer) route_.finalizer(status);
}

void ProxyCall::Observe(StatusCode code, std::string_view message) {
  if (observed_ || options_->observer == nullptr) {
    observed_ = true;
    return;
  }
  observed_ = true;
  CallObserver::Finished f;
  f.method = method_;
  f.request_metadata = &metadata_;
  f.code = code;
  f.message = message;
  f.duration = EventLoop::Clock::now() - started_;
  f.messages_received = messages_received_;
  f.messages_sent = messages_sent_;
  f.upstream = route_.label;
  f.upstream_called = upstream_called_;
  f.route_fields = &route_.log_fields;
  options_->observer->OnFinished(f);
}

}  // namespace praefect::http2
