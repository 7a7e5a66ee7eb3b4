// ProxyCall's upstream streams: opening the upstream and the secondaries
// (Route::secondaries: the nodes that take the same request stream in a
// transaction, whose answers nobody reads), and CallAbort. The rest of the
// call is proxy_call.cc and proxy_call_end.cc.
#include <algorithm>
#include <cstdint>

#include "common/base64.h"
#include "http2/metadata.h"
#include "http2/proxy_call.h"

namespace praefect::http2 {

void ProxyCall::OpenUpstream() {
  for (const auto& [key, value] : route_.set_metadata) {
    if (Status st = CheckSettable(key, value, method_); !st.ok()) return Fail(st);
  }
  for (const Route::Secondary& secondary : route_.secondaries) {
    for (const auto& [key, value] : secondary.set_metadata) {
      if (Status st = CheckSettable(key, value, method_); !st.ok()) return Fail(st);
    }
  }
  phase_ = Phase::kOpening;
  if (options_->observer != nullptr) {
    upstream_called_ = true;
    options_->observer->OnUpstreamCall(method_);
  }
  // Before the upstream's open, which may answer inline and start moving
  // request bytes: they must wait for the secondaries' streams.
  secondaries_.resize(route_.secondaries.size());
  secondaries_running_ = secondary_opens_pending_ = secondaries_.size();
  std::string timeout;
  std::vector<std::string> encoded;
  HeaderRefs headers = UpstreamHeaders(*route_.upstream, route_.set_metadata, &timeout, &encoded);
  Ref();  // released when the pool answers (or the open is cancelled)
  opening_ = true;
  const uint64_t ticket = pool_->Open(route_.upstream, headers, false, up_listener_.get(),
                                      [this](StatusOr<Stream*> stream) {
                                        opening_ = false;
                                        open_ticket_ = 0;
                                        OnUpstreamOpened(std::move(stream));
                                        Unref();
                                      });
  // The pool may have answered already (a connection was ready): only a
  // pending open has a ticket to cancel.
  if (opening_) open_ticket_ = ticket;
  if (!route_.secondaries.empty()) OpenSecondaries();
}

HeaderRefs ProxyCall::UpstreamHeaders(const Upstream& upstream,
                                      const std::vector<std::pair<std::string, std::string>>& set_metadata,
                                      std::string* timeout, std::vector<std::string>* encoded) {
  // By reference to the strings this call holds: nghttp2 copies them when
  // the stream opens (and the pool when the open has to wait).
  HeaderRefs headers;
  headers.reserve(7 + metadata_.size() + set_metadata.size());
  headers.push_back({":method", "POST"});
  headers.push_back({":scheme", upstream.tls() ? "https" : "http"});
  headers.push_back({":path", method_});
  headers.push_back({":authority", upstream.authority});
  headers.push_back({"content-type", content_type_});
  headers.push_back({"te", "trailers"});
  if (deadline_) {
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline_ - EventLoop::Clock::now());
    *timeout = rpc::FormatTimeout(left);
    headers.push_back({"grpc-timeout", *timeout});
  }
  auto edited = [&](const std::string& name) {
    for (const auto& d : route_.drop_metadata)
      if (d == name) return true;
    for (const auto& [k, v] : set_metadata)
      if (k == name) return true;
    return false;
  };
  for (const HeaderField& f : metadata_) {
    if (!IsTransportHeader(f.name) && !edited(f.name)) headers.push_back({f.name, f.value});
  }
  encoded->reserve(set_metadata.size());  // -bin values, base64 on the wire; no reallocation: the views stay valid
  for (const auto& [k, v] : set_metadata) {
    if (k.ends_with("-bin")) {
      encoded->push_back(Base64Encode(v));
      headers.push_back({k, encoded->back()});
    } else {
      headers.push_back({k, v});
    }
  }
  return headers;
}

class ProxyCall::SecondaryListener final : public Stream::Listener {
 public:
  SecondaryListener(ProxyCall* call, size_t index) : call_(call), index_(index) {}
  void OnHeaders(HeaderList& headers, bool end_stream) override {
    call_->OnSecondaryHeaders(index_, headers, end_stream);
  }
  void OnData(const Slice& bytes) override { call_->OnSecondaryData(index_, bytes); }
  void OnTrailers(const HeaderList& trailers) override { call_->OnSecondaryTrailers(index_, trailers); }
  void OnEndStream() override {}
  void OnSendQueueDrained() override {
    call_->MoveRequestBytes();
    call_->UpdateHeld();
  }
  void OnClosed(uint32_t error_code) override { call_->OnSecondaryClosed(index_, error_code); }

 private:
  ProxyCall* const call_;
  const size_t index_;
};

void ProxyCall::OpenSecondaries() {
  const size_t n = secondaries_.size();  // sized by OpenUpstream
  if (phase_ == Phase::kDone) {  // the upstream failed at once
    secondary_opens_pending_ = 0;
    for (size_t i = 0; i < n; ++i) SecondaryFinished(i, Cancelled("the primary's call failed; this node was not called"));
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    SecondaryCall& secondary = secondaries_[i];
    secondary.listener = std::make_unique<SecondaryListener>(this, i);
    std::string timeout;
    std::vector<std::string> encoded;
    const Route::Secondary& route = route_.secondaries[i];
    HeaderRefs headers = UpstreamHeaders(*route.upstream, route.set_metadata, &timeout, &encoded);
    Ref();  // released when the pool answers (or the open is cancelled)
    secondary.opening = true;
    const uint64_t ticket =
        pool_->Open(route.upstream, headers, false, secondary.listener.get(), [this, i](StatusOr<Stream*> stream) {
          OnSecondaryOpened(i, std::move(stream));
          Unref();
        });
    if (secondaries_[i].opening) secondaries_[i].ticket = ticket;
  }
}

void ProxyCall::OnSecondaryOpened(size_t index, StatusOr<Stream*> stream) {
  SecondaryCall& secondary = secondaries_[index];
  secondary.opening = false;
  secondary.ticket = 0;
  --secondary_opens_pending_;
  if (!stream.ok()) {
    SecondaryFinished(index, stream.status());
    MoveRequestBytes();
    return;
  }
  secondary.stream = *stream;
  Ref();  // the stream's; released by OnSecondaryClosed
  if (secondary.finished || client_gone_ || phase_ == Phase::kDone) {
    secondary.stream->Reset(kCancel);
    return;
  }
  std::string& first = route_.secondaries[index].first_message;
  secondary.stream->SendData(rpc::Prefix(first.size()));
  secondary.stream->SendData(first);
  std::string().swap(first);
  MoveRequestBytes();
  UpdateHeld();
}

void ProxyCall::OnSecondaryHeaders(size_t index, const HeaderList& headers, bool end_stream) {
  if (!end_stream) return;  // response headers: nobody reads them
  std::optional<int> http_status;
  if (const std::string* s = FindHeader(headers, ":status")) http_status = std::atoi(s->c_str());
  const rpc::CallStatus st = rpc::StatusFromTrailers(headers, http_status);
  SecondaryFinished(index, Status(st.code, st.message));
}

void ProxyCall::OnSecondaryData(size_t index, const Slice& slice) {
  if (Stream* stream = secondaries_[index].stream; stream != nullptr) stream->Consume(slice.view().size());
}

void ProxyCall::OnSecondaryTrailers(size_t index, const HeaderList& trailers) {
  const rpc::CallStatus st = rpc::StatusFromTrailers(trailers, 200);
  SecondaryFinished(index, Status(st.code, st.message));
}

void ProxyCall::OnSecondaryClosed(size_t index, uint32_t error_code) {
  secondaries_[index].stream = nullptr;
  if (!secondaries_[index].finished) {
    SecondaryFinished(index, client_gone_ ? Cancelled("the client cancelled the call")
                                          : Unavailable("the node's stream ended before its status (HTTP/2 error " +
                                                        std::to_string(error_code) + ")"));
  }
  MoveRequestBytes();  // it no longer holds the others back
  Unref();
}

void ProxyCall::SecondaryFinished(size_t index, const Status& status) {
  SecondaryCall& secondary = secondaries_[index];
  if (secondary.finished) return;
  secondary.finished = true;
  --secondaries_running_;
  if (route_.secondary_finished) route_.secondary_finished(index, status);
  if (secondaries_running_ == 0 && upstream_status_) {
    rpc::CallStatus st = std::move(*upstream_status_);
    upstream_status_.reset();
    Conclude(std::move(st));
  }
}

void ProxyCall::CancelSecondaries(bool only_unwanted, const Status& why) {
  for (size_t i = 0; i < secondaries_.size(); ++i) {
    SecondaryCall& secondary = secondaries_[i];
    if (secondary.finished) continue;
    if (only_unwanted && (!route_.wait_for_secondary || route_.wait_for_secondary(i))) continue;
    if (secondary.opening) {
      pool_->Cancel(secondary.ticket);
      secondary.opening = false;
      secondary.ticket = 0;
      --secondary_opens_pending_;
      Unref();  // the pending open's
    }
    Stream* stream = secondary.stream;
    SecondaryFinished(i, why);  // first: its close, if reported at once, finds it finished
    if (stream != nullptr) stream->Reset(kCancel);
  }
}

size_t ProxyCall::SecondaryRoom() const {
  size_t room = SIZE_MAX;
  for (const SecondaryCall& secondary : secondaries_) {
    if (secondary.finished || secondary.stream == nullptr || secondary.end_sent) continue;
    const size_t queued = secondary.stream->queued();
    room = std::min(room, queued >= options_->forward_high_water ? 0 : options_->forward_high_water - queued);
  }
  return room;
}

void ProxyCall::SendToSecondaries(std::string_view bytes) {
  for (SecondaryCall& secondary : secondaries_) {
    if (secondary.finished || secondary.stream == nullptr || secondary.end_sent) continue;
    secondary.stream->SendData(bytes);
  }
}

void ProxyCall::EndSecondaries() {
  for (SecondaryCall& secondary : secondaries_) {
    if (secondary.finished || secondary.stream == nullptr || secondary.end_sent) continue;
    secondary.end_sent = true;
    secondary.stream->EndStream();
  }
}

void ProxyCall::WatchStall(bool stalled) {
  if (stalled && stall_timer_ == 0) {
    stall_timer_ = loop_->AddTimer(route_.secondary_stall, [this] {
      stall_timer_ = 0;
      OnStall();
    });
  } else if (!stalled && stall_timer_ != 0) {
    loop_->CancelTimer(stall_timer_);
    stall_timer_ = 0;
  }
}

void ProxyCall::OnStall() {
  const std::string ms = std::to_string(route_.secondary_stall.count());
  for (size_t i = 0; i < secondaries_.size(); ++i) {
    SecondaryCall& secondary = secondaries_[i];
    if (secondary.finished) continue;
    if (secondary.opening) {
      pool_->Cancel(secondary.ticket);
      secondary.opening = false;
      secondary.ticket = 0;
      --secondary_opens_pending_;
      SecondaryFinished(i, DeadlineExceeded("no stream to the node within " + ms +
                                            " ms: it is down or hung; its call was given up"));
      Unref();  // the pending open's
    } else if (Stream* stream = secondary.stream; stream != nullptr &&
                                                 stream->queued() >= options_->forward_high_water) {
      SecondaryFinished(i, DeadlineExceeded("the node took no request bytes for " + ms +
                                            " ms: it is hung or overloaded; its call was given up"));
      stream->Reset(kCancel);
    }
  }
  MoveRequestBytes();
}

void CallAbort::Abort(const Status& why) {
  std::lock_guard lock(mu_);
  if (call_ == nullptr) {
    if (loop_ == nullptr && !early_) early_ = why;  // not attached yet
    return;
  }
  loop_->Post([self = shared_from_this(), why] {
    ProxyCall* call = nullptr;
    {
      std::lock_guard inner(self->mu_);
      call = self->call_;
    }
    if (call != nullptr) call->OnAborted(why);
  });
}

void CallAbort::Attach(EventLoop* loop, ProxyCall* call) {
  std::optional<Status> early;
  {
    std::lock_guard lock(mu_);
    loop_ = loop;
    call_ = call;
    early = std::move(early_);
    early_.reset();
  }
  if (early) call->OnAborted(*early);
}

void CallAbort::Detach() {
  std::lock_guard lock(mu_);
  call_ = nullptr;
}

void ProxyCall::OnAborted(const Status& why) {
  // Only while the upstream has not answered: once it has (the commit, the
  // wait for the secondaries), its answer is the call's.
  if ((phase_ != Phase::kOpening && phase_ != Phase::kForwarding) || upstream_done_ || trailers_sent_) return;
  Fail(why);
}

}  // namespace praefect::http2
