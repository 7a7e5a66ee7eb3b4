#include "http2/proxy_call.h"

#include <algorithm>
#include <atomic>

#include "common/base64.h"
#include "http2/metadata.h"

namespace praefect::http2 {
namespace {

void Post(EventLoop* loop, std::function<void()> fn) {
  if (loop->InLoopThread()) {
    loop->Defer(std::move(fn));
  } else {
    loop->Post(std::move(fn));
  }
}

}  // namespace

class ProxyCall::DownListener final : public Stream::Listener {
 public:
  explicit DownListener(ProxyCall* call) : call_(call) {}
  void OnHeaders(HeaderList& headers, bool end_stream) override { call_->OnRequestHeaders(headers, end_stream); }
  void OnData(const Slice& bytes) override {
    call_->OnRequestData(bytes);
    call_->UpdateHeld();
  }
  void OnTrailers(const HeaderList&) override {}  // gRPC requests carry none
  void OnEndStream() override { call_->OnRequestEnd(); }
  void OnSendQueueDrained() override {
    call_->OnDownstreamDrained();
    call_->UpdateHeld();
  }
  void OnClosed(uint32_t error_code) override { call_->OnDownstreamClosed(error_code); }

 private:
  ProxyCall* const call_;
};

class ProxyCall::UpListener final : public Stream::Listener {
 public:
  explicit UpListener(ProxyCall* call) : call_(call) {}
  void OnHeaders(HeaderList& headers, bool end_stream) override {
    call_->OnResponseHeaders(headers, end_stream);
  }
  void OnData(const Slice& bytes) override {
    call_->OnResponseData(bytes);
    call_->UpdateHeld();
  }
  void OnTrailers(const HeaderList& trailers) override { call_->OnResponseTrailers(trailers); }
  void OnEndStream() override {}
  void OnSendQueueDrained() override {
    call_->OnUpstreamDrained();
    call_->UpdateHeld();
  }
  void OnClosed(uint32_t error_code) override { call_->OnUpstreamClosed(error_code); }

 private:
  ProxyCall* const call_;
};

// The `done` handed to the Director: copies share it; the first answer
// counts, and dropping every copy unanswered answers INTERNAL, so that the
// call cannot hang. Answers reach the call on its loop.
class ProxyCall::DirectorReply {
 public:
  DirectorReply(EventLoop* loop, ProxyCall* call, std::string method)
      : loop_(loop), call_(call), method_(std::move(method)) {}
  ~DirectorReply() {
    if (!answered_.exchange(true))
      Deliver(Internal("the director for " + method_ + " dropped the call without answering (a bug in the director)"));
  }
  // By reference, here and on to OnDirected: a Route is large, and every
  // move of it costs (callgrind: ~250 instructions a move and its destructor).
  void Answer(StatusOr<Route>&& route) {
    if (answered_.exchange(true)) return;
    Deliver(std::move(route));
  }

 private:
  void Deliver(StatusOr<Route>&& route) {
    ProxyCall* call = call_;
    auto shared = std::make_shared<StatusOr<Route>>(std::move(route));
    Post(loop_, [call, shared] { call->OnDirected(std::move(*shared)); });
  }
  EventLoop* const loop_;
  ProxyCall* const call_;
  const std::string method_;
  std::atomic<bool> answered_{false};
};

void ProxyCall::Start(EventLoop* loop, const ProxyOptions* options, UpstreamPool* pool, Stream* down) {
  new ProxyCall(loop, options, pool, down);  // owns itself
}

ProxyCall::ProxyCall(EventLoop* loop, const ProxyOptions* options, UpstreamPool* pool, Stream* down)
    : loop_(loop),
      options_(options),
      pool_(pool),
      down_listener_(std::make_unique<DownListener>(this)),
      up_listener_(std::make_unique<UpListener>(this)),
      down_(down),
      request_scanner_(options->max_message_bytes),
      response_scanner_(UINT32_MAX) {
  down_->set_listener(down_listener_.get());
  if (options_->stats != nullptr) {
    options_->stats->calls_started.fetch_add(1, std::memory_order_relaxed);
    options_->stats->calls_active.fetch_add(1, std::memory_order_relaxed);
  }
}

ProxyCall::~ProxyCall() {
  if (route_.abort) route_.abort->Detach();
  if (deadline_timer_ != 0) loop_->CancelTimer(deadline_timer_);
  if (grace_timer_ != 0) loop_->CancelTimer(grace_timer_);
  if (stall_timer_ != 0) loop_->CancelTimer(stall_timer_);
  if (options_->stats != nullptr) {
    options_->stats->bytes_held.fetch_sub(held_, std::memory_order_relaxed);
    options_->stats->calls_active.fetch_sub(1, std::memory_order_relaxed);
  }
}

void ProxyCall::UpdateHeld() {
  if (options_->stats == nullptr) return;
  size_t queued = (down_ != nullptr ? down_->queued() : 0) + (up_ != nullptr ? up_->queued() : 0);
  for (const SecondaryCall& secondary : secondaries_) {
    if (secondary.stream != nullptr) queued += secondary.stream->queued();
  }
  const int64_t now = static_cast<int64_t>(first_.size() + request_held_.size() + response_held_.size() + queued);
  if (now == held_) return;
  const int64_t total = options_->stats->bytes_held.fetch_add(now - held_, std::memory_order_relaxed) + now - held_;
  held_ = now;
  int64_t seen = options_->stats->max_bytes_held.load(std::memory_order_relaxed);
  while (total > seen && !options_->stats->max_bytes_held.compare_exchange_weak(seen, total)) {
  }
}

void ProxyCall::Unref() {
  if (--refs_ == 0) loop_->DeleteSoon(std::unique_ptr<ProxyCall>(this));
}

// ---- The request -------------------------------------------------------------

void ProxyCall::OnRequestHeaders(HeaderList& headers, bool end_stream) {
  for (HeaderField& f : headers) {
    if (f.name == ":path") {
      method_ = std::move(f.value);
      break;
    }
  }
  if (options_->observer != nullptr) options_->observer->OnStarted(method_);
  if (down_->headers_too_large())
    return Fail(ResourceExhausted("the request's metadata is larger than the limit of the connection's "
                                  "SETTINGS_MAX_HEADER_LIST_SIZE; send less metadata"));
  const std::string* method = FindHeader(headers, ":method");
  const std::string* content_type = FindHeader(headers, "content-type");
  if (method == nullptr || *method != "POST" || content_type == nullptr ||
      content_type->rfind("application/grpc", 0) != 0)
    return Fail(Status(StatusCode::kUnimplemented,
                       "not a gRPC request (expected POST with content-type application/grpc): praefect serves the "
                       "Gitaly gRPC protocol only"));
  // The metadata is taken, not copied. content-type, a transport header,
  // is kept apart (each hop sets its own).
  metadata_.reserve(headers.size());
  for (HeaderField& f : headers) {
    if (f.name.empty() || f.name[0] == ':') continue;
    if (f.name == "content-type") {
      content_type_ = std::move(f.value);
    } else {
      metadata_.push_back(std::move(f));
    }
  }
  if (const std::string* timeout = FindHeader(metadata_, "grpc-timeout")) {
    auto t = rpc::ParseTimeout(*timeout);
    if (!t) return Fail(InvalidArgument("malformed grpc-timeout \"" + *timeout + "\""));
    deadline_ = loop_->now() + std::chrono::duration_cast<EventLoop::Clock::duration>(*t);
    deadline_timer_ = loop_->AddTimer(*t, [this] {
      deadline_timer_ = 0;
      OnDeadline();
    });
  }
  CallInfo info;
  info.method = method_;
  info.metadata = &metadata_;
  if (Status st = options_->director->Admit(info); !st.ok()) return Fail(st);
  phase_ = Phase::kFirstMessage;
  down_->SetReceiveWindow(options_->admitted_window);
  if (end_stream) OnRequestEnd();
}

void ProxyCall::OnRequestData(const Slice& slice) {
  if (down_ == nullptr) return;
  const std::string_view bytes = slice.view();
  if (phase_ == Phase::kDone || phase_ == Phase::kCommitting || phase_ == Phase::kHeaders) {
    down_->Consume(bytes.size());  // nobody wants them
    return;
  }
  rpc::MessageScanner::Result r = request_scanner_.Feed(bytes);
  messages_received_ += r.messages_started;
  if (r.oversized) {
    down_->Consume(bytes.size());
    return Fail(ResourceExhausted("request message of " + std::to_string(*r.oversized) + " bytes to " + method_ +
                                  " is larger than the limit of " + std::to_string(options_->max_message_bytes) +
                                  " bytes per message" + options_->max_message_hint));
  }
  if (phase_ == Phase::kFirstMessage) {
    size_t need = rpc::kPrefixSize;
    if (first_.size() >= rpc::kPrefixSize) {
      need += (size_t{static_cast<unsigned char>(first_[1])} << 24) | (size_t{static_cast<unsigned char>(first_[2])} << 16) |
              (size_t{static_cast<unsigned char>(first_[3])} << 8) | size_t{static_cast<unsigned char>(first_[4])};
    }
    size_t used = 0;
    while (used < bytes.size() && first_.size() < need) {
      const size_t take = std::min(need - first_.size(), bytes.size() - used);
      first_.append(bytes.substr(used, take));
      used += take;
      if (first_.size() == rpc::kPrefixSize) {
        need += (size_t{static_cast<unsigned char>(first_[1])} << 24) |
                (size_t{static_cast<unsigned char>(first_[2])} << 16) |
                (size_t{static_cast<unsigned char>(first_[3])} << 8) | size_t{static_cast<unsigned char>(first_[4])};
      }
    }
    down_->Consume(used);  // held in first_, bounded by the limit
    request_held_.append(bytes.substr(used));
    if (first_.size() >= rpc::kPrefixSize && first_.size() == need) {
      if (first_[0] != 0)
        return Fail(Status(StatusCode::kUnimplemented,
                           method_ + ": the first request message is compressed; praefect must read it to route the "
                                     "call: send it uncompressed"));
      first_complete_ = true;
      Direct();
    }
    return;
  }
  if (phase_ == Phase::kForwarding && request_held_.empty() && up_ != nullptr && secondaries_.empty() &&
      up_->queued() < options_->forward_high_water) {
    up_->SendData(slice);  // by reference to the block it was read into
    down_->Consume(bytes.size());
    return;
  }
  request_held_.append(bytes);
  if (phase_ == Phase::kForwarding) MoveRequestBytes();
}

void ProxyCall::OnRequestEnd() {
  client_half_closed_ = true;
  if (phase_ == Phase::kFirstMessage && !first_complete_) {
    if (!first_.empty())
      return Fail(Internal(method_ + ": the client ended its request in the middle of a message"));
    Direct();  // no request message at all; the Director decides
    return;
  }
  if (phase_ == Phase::kForwarding) MoveRequestBytes();
}

// With secondaries, the bytes go to every node at once, as fast as the
// slowest takes them: the client's window reopens only for bytes every
// node's stream took.
void ProxyCall::MoveRequestBytes() {
  if (up_ == nullptr || down_ == nullptr) return;
  if (!secondaries_.empty()) {
    const bool waiting = !request_held_.empty() || (client_half_closed_ && !upstream_end_sent_);
    WatchStall(waiting && up_->queued() < options_->forward_high_water &&
               (secondary_opens_pending_ > 0 || SecondaryRoom() == 0));
    if (secondary_opens_pending_ > 0) return;
  }
  while (!request_held_.empty() && up_->queued() < options_->forward_high_water) {
    const size_t n = std::min({request_held_.size(), options_->forward_high_water - up_->queued(), SecondaryRoom()});
    if (n == 0) break;
    const std::string_view chunk = std::string_view(request_held_).substr(0, n);
    up_->SendData(chunk);
    SendToSecondaries(chunk);
    down_->Consume(n);
    request_held_.erase(0, n);
  }
  if (request_held_.empty() && client_half_closed_ && !upstream_end_sent_) {
    upstream_end_sent_ = true;
    up_->EndStream();
    EndSecondaries();
  }
}

void ProxyCall::OnUpstreamDrained() { MoveRequestBytes(); }

// ---- The Director ------------------------------------------------------------

void ProxyCall::Direct() {
  phase_ = Phase::kDirecting;
  Ref();  // released by OnDirected
  CallInfo info;
  info.method = method_;
  info.metadata = &metadata_;
  if (first_complete_) info.first_message = std::string_view(first_).substr(rpc::kPrefixSize);
  auto reply = std::make_shared<DirectorReply>(loop_, this, method_);
  options_->director->Direct(info, [reply](StatusOr<Route> route) mutable { reply->Answer(std::move(route)); });
}

void ProxyCall::OnDirected(StatusOr<Route>&& route) {
  struct Update {
    ProxyCall* call;
    ~Update() { call->UpdateHeld(); }
  } update{this};
  if (client_gone_ || phase_ == Phase::kDone) {
    if (route.ok() && route->finalizer)
      route->finalizer(Cancelled("the client cancelled the call while it was being routed"));
    phase_ = Phase::kDone;
    Unref();
    return;
  }
  if (!route.ok()) {
    Fail(route.status());
  } else if (route->local_response.has_value()) {
    route_ = std::move(route).value();
    HeaderList headers = {{":status", "200"}, {"content-type", "application/grpc"}};
    down_->SubmitResponse(headers, false);
    response_headers_sent_ = true;
    down_->SendData(rpc::Prefix(route_.local_response->size()));
    down_->SendData(*route_.local_response);
    for (const std::string& more : route_.more_local_responses) {
      down_->SendData(rpc::Prefix(more.size()));
      down_->SendData(more);
    }
    messages_sent_ = 1 + route_.more_local_responses.size();
    Finalize(Status::Ok());
    if (route_.keep_open) {
      phase_ = Phase::kCommitting;  // nothing more is read; the client or the server ends it
    } else {
      SendTrailers(rpc::CallStatus{});
    }
  } else if (route->local_stream) {
    route_ = std::move(route).value();
    HeaderList headers = {{":status", "200"}, {"content-type", "application/grpc"}};
    down_->SubmitResponse(headers, false);
    response_headers_sent_ = true;
    phase_ = Phase::kForwarding;
    local_stream_ = route_.local_stream;
    Ref();  // released by PullLocal once the stream finished
    EventLoop* loop = loop_;
    local_stream_->SetNotify([loop, this] { Post(loop, [this] { PullLocal(); }); });
  } else if (!route->upstream) {
    route_ = std::move(route).value();
    Fail(Internal("the director's route for " + method_ + " names no upstream channel"));
  } else {
    route_ = std::move(route).value();
    OpenUpstream();
    if (route_.abort) route_.abort->Attach(loop_, this);
  }
  Unref();
}

// ---- The upstream (opened in proxy_call_open.cc) ---------------------------------

void ProxyCall::OnUpstreamOpened(StatusOr<Stream*> stream) {
  struct Update {
    ProxyCall* call;
    ~Update() { call->UpdateHeld(); }
  } update{this};
  if (!stream.ok()) {
    Finalize(stream.status());
    if (!client_gone_) Fail(stream.status());
    return;
  }
  up_ = *stream;
  Ref();  // the upstream stream's; released by OnUpstreamClosed
  if (client_gone_) {
    up_->Reset(kCancel);
    return;
  }
  phase_ = Phase::kForwarding;
  if (route_.first_message) {
    up_->SendData(rpc::Prefix(route_.first_message->size()));
    up_->SendData(*route_.first_message);
  } else if (first_complete_) {
    up_->SendData(first_);
  }
  first_.clear();
  first_.shrink_to_fit();
  route_.first_message.reset();
  MoveRequestBytes();
}

void ProxyCall::OnResponseHeaders(HeaderList& headers, bool end_stream) {
  std::optional<int> http_status;
  if (const std::string* s = FindHeader(headers, ":status")) http_status = std::atoi(s->c_str());
  if (end_stream) {
    status_from_upstream_ = true;
    return UpstreamFinished(rpc::StatusFromTrailers(headers, http_status));
  }
  if (client_gone_ || down_ == nullptr || trailers_sent_) return;
  HeaderList out;
  out.reserve(headers.size() + 1);
  out.push_back({":status", "200"});
  std::string content_type = "application/grpc";
  for (HeaderField& f : headers) {
    if (f.name == "content-type") {
      content_type = std::move(f.value);
      break;
    }
  }
  out.push_back({"content-type", std::move(content_type)});
  for (HeaderField& f : headers) {
    if (!IsTransportHeader(f.name)) out.push_back(std::move(f));
  }
  down_->SubmitResponse(out, false);
  response_headers_sent_ = true;
}

void ProxyCall::OnResponseData(const Slice& slice) {
  const std::string_view bytes = slice.view();
  rpc::MessageScanner::Result r = response_scanner_.Feed(bytes);
  messages_sent_ += r.messages_started;
  if (r.messages_started > 0) received_response_message_ = true;
  if (client_gone_ || down_ == nullptr || trailers_sent_) {
    if (up_ != nullptr) up_->Consume(bytes.size());
    return;
  }
  if (response_held_.empty() && down_->queued() < options_->forward_high_water) {
    // The common case: straight into the client's stream queue, by
    // reference to the block the node's bytes were read into.
    down_->SendData(slice);
    if (up_ != nullptr) up_->Consume(bytes.size());
    return;
  }
  response_held_.append(bytes);
  MoveResponseBytes();
}

void ProxyCall::MoveResponseBytes() {
  if (down_ == nullptr) return;
  while (!response_held_.empty() && down_->queued() < options_->forward_high_water) {
    const size_t n = std::min(response_held_.size(), options_->forward_high_water - down_->queued());
    down_->SendData(std::string_view(response_held_).substr(0, n));
    if (up_ != nullptr) up_->Consume(n);
    if (local_stream_ != nullptr) local_stream_->Consumed(n);
    response_held_.erase(0, n);
  }
  if (response_held_.empty() && final_status_) {
    rpc::CallStatus st = std::move(*final_status_);
    final_status_.reset();
    SendTrailers(std::move(st));
  }
}

void ProxyCall::OnDownstreamDrained() { MoveResponseBytes(); }

void ProxyCall::PullLocal() {
  LocalStream::Taken taken = local_stream_->Take();
  size_t dropped = 0;
  for (const std::string& m : taken.messages) {
    if (trailers_sent_ || client_gone_ || down_ == nullptr || phase_ == Phase::kDone) {
      dropped += LocalStream::Cost(m);
      continue;
    }
    response_held_.append(rpc::Prefix(m.size()));
    response_held_.append(m);
    ++messages_sent_;
  }
  if (dropped > 0) local_stream_->Consumed(dropped);
  if (!taken.messages.empty()) MoveResponseBytes();
  if (taken.finished) {
    local_stream_->Cancel();
    local_stream_.reset();
    if (!trailers_sent_ && !client_gone_ && phase_ != Phase::kDone) {
      Finalize(*taken.finished);
      rpc::CallStatus st;
      st.code = taken.finished->code();
      st.message = taken.finished->message();
      SendTrailers(std::move(st));  // after the held bytes
    }
    Unref();  // the stream's
    return;
  }
  UpdateHeld();
}

void ProxyCall::OnResponseTrailers(const HeaderList& trailers) {
  status_from_upstream_ = true;
  UpstreamFinished(rpc::StatusFromTrailers(trailers, 200));
}

void ProxyCall::OnUpstreamClosed(uint32_t error_code) {
  up_ = nullptr;
  request_held_.clear();
  if (!upstream_done_) {
    const std::string why = error_code == kRefusedStream
                                ? "the node refused the call (it is shutting down or overloaded); retry"
                                : "the node's stream ended before its status (the connection broke or the node "
                                  "reset it, HTTP/2 error " + std::to_string(error_code) + ")";
    rpc::CallStatus st;
    st.code = client_gone_ ? StatusCode::kCancelled : StatusCode::kUnavailable;
    st.message = client_gone_ ? "the client cancelled the call" : why;
    UpstreamFinished(std::move(st));
  }
  Unref();
}

void ProxyCall::UpstreamFinished(rpc::CallStatus status) {
  if (upstream_done_) return;
  upstream_done_ = true;
  if (phase_ == Phase::kDone) return;  // the call was failed already; the upstream was reset
  Finalize(Status(status.code, status.message));
  if (secondaries_running_ > 0) {
    // The secondaries end first: the commit needs their statuses. A failed
    // upstream ends them at once, unless the route says which are worth
    // waiting for (a transaction's: those that committed with the primary
    // before it failed only finish their calls).
    phase_ = Phase::kCommitting;
    const bool ok = status.code == StatusCode::kOk;
    upstream_status_ = std::move(status);
    if (!ok && !route_.wait_for_secondary) {
      CancelSecondaries(false, Cancelled("the primary's call failed; this node's call was cancelled"));
      return;
    }
    CancelSecondaries(true, Cancelled("the primary's call ended while this node's transaction had failed"));
    if (secondaries_running_ > 0 && upstream_status_) {
      grace_timer_ = loop_->AddTimer(route_.secondary_grace, [this] {
        grace_timer_ = 0;
        CancelSecondaries(false, DeadlineExceeded("the node's call had not ended " +
                                                  std::to_string(route_.secondary_grace.count()) +
                                                  " ms after the primary's"));
      });
    }
    return;
  }
  Conclude(std::move(status));
}

void ProxyCall::Conclude(rpc::CallStatus status) {
  WatchStall(false);
  if (grace_timer_ != 0) {
    loop_->CancelTimer(grace_timer_);
    grace_timer_ = 0;
  }
  if (phase_ == Phase::kDone) return;  // failed while the secondaries ended
  const Status plain(status.code, status.message);
  if (route_.commit) {
    phase_ = Phase::kCommitting;
    Ref();  // released by OnCommitted
    auto commit = std::move(route_.commit);
    EventLoop* loop = loop_;
    auto answered = std::make_shared<std::atomic<bool>>(false);
    commit(plain, [this, loop, status, answered](std::optional<Status> replacement) {
      if (answered->exchange(true)) return;
      Post(loop, [this, status, replacement] { OnCommitted(status, replacement); });
    });
    return;
  }
  SendTrailers(std::move(status));
}

void ProxyCall::OnCommitted(rpc::CallStatus upstream, std::optional<Status> replacement) {
  if (replacement) {
    status_from_upstream_ = false;  // praefect's own verdict now
    upstream.code = replacement->code();
    upstream.message = replacement->message();
    if (!replacement->ok()) upstream.extra.clear();  // the node's details describe its own success
  }
  SendTrailers(std::move(upstream));
  Unref();
}

}  // namespace praefect::http2
