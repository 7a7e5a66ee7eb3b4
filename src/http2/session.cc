#include "http2/session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "http2/nghttp2_memory.h"

namespace praefect::http2 {

HeaderRefs RefsTo(const HeaderList& headers) {
  HeaderRefs refs;
  refs.reserve(headers.size());
  for (const HeaderField& f : headers) refs.push_back({f.name, f.value});
  return refs;
}

const std::string* FindHeader(const HeaderList& headers, std::string_view name) {
  for (const HeaderField& f : headers) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

namespace {

// The name/value vector nghttp2 takes, for a HeaderList or HeaderRefs, in a
// buffer reused by every call on this thread (valid until the next ToNv).
// nghttp2 copies the strings (no NO_COPY flags): they need not outlive the
// submit.
template <typename Fields>
std::vector<nghttp2_nv>& ToNv(const Fields& headers) {
  thread_local std::vector<nghttp2_nv> nv;
  nv.clear();
  nv.reserve(headers.size());
  for (const auto& f : headers) {
    nv.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data())),
                            reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data())), f.name.size(),
                            f.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nv;
}

}  // namespace

// nghttp2's callbacks, with access to the session's and streams' insides.
struct Callbacks {
  static Session* Of(void* user) { return static_cast<Session*>(user); }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
      Of(user)->AddStream(frame->hd.stream_id);
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    Session* s = Of(user);
    Stream* st = s->FindStream(frame->hd.stream_id);
    if (st == nullptr) return 0;
    st->header_bytes_ += namelen + valuelen + 32;
    if (st->header_bytes_ > s->options_.max_header_list_bytes) {
      st->headers_too_large_ = true;
      return 0;
    }
    if (st->headers_in_.empty()) st->headers_in_.reserve(16);  // a gRPC request's usual count
    st->headers_in_.push_back(HeaderField{std::string(reinterpret_cast<const char*>(name), namelen),
                                          std::string(reinterpret_cast<const char*>(value), valuelen)});
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    Session* s = Of(user);
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
      case NGHTTP2_HEADERS: {
        Stream* st = s->FindStream(frame->hd.stream_id);
        if (st == nullptr) return 0;
        HeaderList headers = std::move(st->headers_in_);
        st->headers_in_.clear();
        st->header_bytes_ = 0;
        if (end) st->remote_closed_ = true;
        if (!st->headers_seen_) {
          st->headers_seen_ = true;
          if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) s->owner_->OnNewStream(st);
          if (st->listener_ != nullptr) st->listener_->OnHeaders(headers, end);
        } else if (st->listener_ != nullptr) {
          st->listener_->OnTrailers(headers);
        }
        if (end && st->listener_ != nullptr) st->listener_->OnEndStream();
        break;
      }
      case NGHTTP2_DATA: {
        if (!end) break;
        Stream* st = s->FindStream(frame->hd.stream_id);
        if (st == nullptr) break;
        st->remote_closed_ = true;
        if (st->listener_ != nullptr) st->listener_->OnEndStream();
        break;
      }
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) s->owner_->OnPingReceived();
        break;
      case NGHTTP2_GOAWAY:
        s->goaway_received_ = true;
        s->owner_->OnGoAway(frame->goaway.last_stream_id, frame->goaway.error_code);
        break;
      default:
        break;
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                         void* user) {
    Stream* st = Of(user)->FindStream(stream_id);
    if (st == nullptr || st->listener_ == nullptr) {
      // Nobody reads it: give the window back at once.
      nghttp2_session_consume(session, stream_id, len);
      if (st != nullptr) st->received_ += len, st->consumed_ += len;
      return 0;
    }
    st->received_ += len;
    const char* bytes = reinterpret_cast<const char*>(data);
    // nghttp2 hands DATA payloads out of the input itself: their block
    // travels with them.
    Block* block = Of(user)->input_block_;
    st->listener_->OnData(Slice(block != nullptr && block->Contains(bytes, len) ? block : nullptr, bytes, len));
    return 0;
  }

  static int OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code, void* user) {
    Session* s = Of(user);
    auto it = s->streams_.find(stream_id);
    if (it == s->streams_.end()) return 0;
    std::unique_ptr<Stream> st = std::move(it->second);
    s->streams_.erase(it);
    if (s->last_found_ == st.get()) s->last_found_ = nullptr;
    // DATA received and never consumed still holds the connection's window.
    if (st->received_ > st->consumed_) nghttp2_session_consume_connection(session, st->received_ - st->consumed_);
    if (st->listener_ != nullptr) st->listener_->OnClosed(error_code);
    return 0;
  }

  // DATA is not copied here: the payload stays in the stream's queue until
  // SendData writes it straight into the output (NGHTTP2_DATA_FLAG_NO_COPY).
  static ssize_t ReadData(nghttp2_session* session, int32_t stream_id, uint8_t*, size_t length,
                          uint32_t* data_flags, nghttp2_data_source*, void* user) {
    Session* s = Of(user);
    Stream* st = s->FindStream(stream_id);
    if (st == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    const size_t available = st->queued() - st->promised_;
    const size_t n = std::min(length, available);
    st->promised_ += n;
    if (n > 0) *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == available) {
      if (st->local_end_ == Stream::LocalEnd::kEndPending) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        st->local_end_ = Stream::LocalEnd::kDone;
      } else if (st->local_end_ == Stream::LocalEnd::kTrailersPending) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
        std::vector<nghttp2_nv>& nv = ToNv(st->trailers_);  // copied: the strings die with the stream
        nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size());
        st->local_end_ = Stream::LocalEnd::kDone;
      } else if (n == 0) {
        st->deferred_ = true;
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }

  // Writes a DATA frame whose payload ReadData left in the stream's queue:
  // the frame header, then the payload, moved by reference, into Produce's
  // output.
  static int SendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                      nghttp2_data_source*, void* user) {
    Session* s = Of(user);
    if (s->produce_out_ == nullptr) return NGHTTP2_ERR_CALLBACK_FAILURE;
    // The budget is checked between frames (Produce): a frame is at most
    // 16 KiB past it, and never left half-written.
    Stream* st = s->FindStream(frame->hd.stream_id);
    if (st == nullptr || st->queued() < length) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    ByteQueue& out = *s->produce_out_;
    out.Append(std::string_view(reinterpret_cast<const char*>(framehd), 9));
    const size_t pad = frame->data.padlen;
    if (pad > 0) out.Append(std::string_view(std::string(1, static_cast<char>(pad - 1))));
    st->out_.MoveTo(&out, length);
    if (pad > 1) out.Append(std::string_view(std::string(pad - 1, '\0')));
    st->promised_ -= length;
    if (st->queued() == 0 && !st->drained_pending_) {
      st->drained_pending_ = true;
      s->drained_.push_back(st->id_);
    }
    return 0;
  }

  static int OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) Of(user)->owner_->OnDataOrHeadersSent();
    // A server that answered completely while the client is still sending
    // tells it to stop, as gRPC servers do (RST_STREAM NO_ERROR).
    if (frame->hd.type != NGHTTP2_HEADERS || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
    if (nghttp2_session_check_server_session(session) == 0) return 0;
    Stream* st = Of(user)->FindStream(frame->hd.stream_id);
    if (st != nullptr && !st->remote_closed_) nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id_, kNoError);
    return 0;
  }
};

// ---- Stream ------------------------------------------------------------------

void Stream::SubmitResponse(const HeaderList& headers, bool end_stream) {
  std::vector<nghttp2_nv>& nv = ToNv(headers);
  if (end_stream) {
    local_end_ = LocalEnd::kDone;
    nghttp2_submit_response(session_->session_, id_, nv.data(), nv.size(), nullptr);
  } else {
    nghttp2_data_provider provider{};
    provider.read_callback = &Callbacks::ReadData;
    data_provider_ = true;
    nghttp2_submit_response(session_->session_, id_, nv.data(), nv.size(), &provider);
  }
  session_->NotifyWantWrite();
}

void Stream::Resume() {
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(session_->session_, id_);
  }
  session_->NotifyWantWrite();
}

void Stream::SendData(std::string_view bytes) {
  if (local_end_ != LocalEnd::kOpen || bytes.empty()) return;
  out_.Append(bytes);
  Resume();
}

void Stream::SendData(const Slice& bytes) {
  if (local_end_ != LocalEnd::kOpen || bytes.empty()) return;
  out_.Append(bytes);
  Resume();
}

void Stream::SendTrailers(HeaderList trailers) {
  if (local_end_ != LocalEnd::kOpen) return;
  if (!data_provider_) {
    // No response headers yet: a trailers-only response.
    SubmitResponse(trailers, true);
    return;
  }
  trailers_ = std::move(trailers);
  local_end_ = LocalEnd::kTrailersPending;
  Resume();
}

void Stream::EndStream() {
  if (local_end_ != LocalEnd::kOpen) return;
  local_end_ = LocalEnd::kEndPending;
  Resume();
}

void Stream::Reset(uint32_t error_code) {
  nghttp2_submit_rst_stream(session_->session_, NGHTTP2_FLAG_NONE, id_, error_code);
  session_->NotifyWantWrite();
}

void Stream::Consume(size_t bytes) {
  if (bytes == 0) return;
  consumed_ += bytes;
  nghttp2_session_consume(session_->session_, id_, bytes);
  session_->NotifyWantWrite();
}

void Stream::SetReceiveWindow(int32_t size) {
  nghttp2_session_set_local_window_size(session_->session_, NGHTTP2_FLAG_NONE, id_, size);
  session_->NotifyWantWrite();
}

// ---- Session -----------------------------------------------------------------

namespace {

nghttp2_session_callbacks* NewCallbacks() {
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Callbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cb, &Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Callbacks::OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Callbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Callbacks::OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Callbacks::OnFrameSend);
  nghttp2_session_callbacks_set_send_data_callback(cb, &Callbacks::SendData);
  return cb;
}

nghttp2_option* NewOption(const SessionOptions& options) {
  nghttp2_option* opt = nullptr;
  nghttp2_option_new(&opt);
  // Windows reopen when the other side took the bytes (Stream::Consume):
  // the peer can never have more in flight than what praefect will hold.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // A header list up to the limit may come (and go on to the node) in
  // CONTINUATION frames of 16 KiB; nghttp2's defaults (8 frames, 64 KiB sent)
  // would refuse one well within it. Past the limit the stream is refused,
  // the connection stays.
  nghttp2_option_set_max_continuations(opt, options.max_header_list_bytes / 16384 + 8);
  nghttp2_option_set_max_send_header_block_length(opt, 2 * static_cast<size_t>(options.max_header_list_bytes));
  return opt;
}

}  // namespace

Session::~Session() {
  // Listeners hear of streams dying with the session.
  auto streams = std::move(streams_);
  streams_.clear();
  last_found_ = nullptr;
  for (auto& [id, st] : streams) {
    if (st->listener_ != nullptr) st->listener_->OnClosed(kCancel);
  }
  nghttp2_session_del(session_);
}

Stream* Session::AddStream(int32_t id) {
  auto st = std::unique_ptr<Stream>(new Stream(this, id));
  Stream* raw = st.get();
  streams_[id] = std::move(st);
  nghttp2_session_set_stream_user_data(session_, id, raw);
  return raw;
}

Stream* Session::FindStream(int32_t id) {
  // Callbacks come in runs for one stream (a DATA frame: read, send, sent).
  if (last_found_ != nullptr && last_found_->id_ == id) return last_found_;
  auto it = streams_.find(id);
  if (it == streams_.end()) return nullptr;
  last_found_ = it->second.get();
  return last_found_;
}

void Session::NotifyWantWrite() {
  if (in_produce_ || want_write_notified_) return;
  want_write_notified_ = true;
  owner_->OnWantWrite();
}

Status Session::Receive(const Slice& input) {
  input_block_ = input.block();
  ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(input.data()), input.size());
  input_block_ = nullptr;
  if (n < 0) return Unavailable(std::string("HTTP/2: ") + nghttp2_strerror(static_cast<int>(n)));
  NotifyWantWrite();
  return Status::Ok();
}

bool Session::Produce(ByteQueue* out, size_t budget) {
  in_produce_ = true;
  want_write_notified_ = false;
  produce_out_ = out;
  produce_budget_ = out->size() + budget;
  stopped_by_budget_ = false;
  for (;;) {
    if (out->size() >= produce_budget_) {
      stopped_by_budget_ = true;
      break;
    }
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) break;
    out->Append(std::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  produce_out_ = nullptr;
  in_produce_ = false;
  // Streams whose queue was taken may send more now. (By id: a listener
  // may close other streams.)
  drained_batch_.swap(drained_);
  for (int32_t id : drained_batch_) {
    Stream* st = FindStream(id);
    if (st == nullptr || !st->drained_pending_) continue;
    st->drained_pending_ = false;
    if (st->listener_ != nullptr) st->listener_->OnSendQueueDrained();
  }
  drained_batch_.clear();
  // nghttp2 had nothing more to send when it returned 0; only a stop at the
  // budget leaves output behind.
  if (stopped_by_budget_) NotifyWantWrite();
  return Alive();
}

bool Session::WantsWrite() const { return nghttp2_session_want_write(session_) != 0; }

bool Session::Alive() const {
  return nghttp2_session_want_read(session_) != 0 || nghttp2_session_want_write(session_) != 0;
}

void Session::GoAway(uint32_t error_code, std::string_view debug) {
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_), error_code,
                        reinterpret_cast<const uint8_t*>(debug.data()), debug.size());
  NotifyWantWrite();
}

void Session::ShutdownNotice() {
  nghttp2_submit_shutdown_notice(session_);
  NotifyWantWrite();
}

void Session::Ping() {
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
  NotifyWantWrite();
}

uint32_t Session::remote_max_concurrent_streams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

StatusOr<std::unique_ptr<ServerSession>> ServerSession::Create(Owner* owner, const SessionOptions& options) {
  std::unique_ptr<ServerSession> s(new ServerSession(owner, options));
  nghttp2_session_callbacks* cb = NewCallbacks();
  nghttp2_option* opt = NewOption(options);
  int rv = nghttp2_session_server_new3(&s->session_, cb, s.get(), opt, Nghttp2Allocator());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return Internal(std::string("HTTP/2 server session: ") + nghttp2_strerror(rv));
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, options.max_frame_size},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(options.initial_stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options.max_header_list_bytes},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(s->session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(s->session_, NGHTTP2_FLAG_NONE, 0, options.connection_window);
  return s;
}

StatusOr<std::unique_ptr<ClientSession>> ClientSession::Create(Owner* owner, const SessionOptions& options) {
  std::unique_ptr<ClientSession> s(new ClientSession(owner, options));
  nghttp2_session_callbacks* cb = NewCallbacks();
  nghttp2_option* opt = NewOption(options);
  int rv = nghttp2_session_client_new3(&s->session_, cb, s.get(), opt, Nghttp2Allocator());
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) return Internal(std::string("HTTP/2 client session: ") + nghttp2_strerror(rv));
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, options.max_frame_size},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, static_cast<uint32_t>(options.initial_stream_window)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options.max_header_list_bytes},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(s->session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(s->session_, NGHTTP2_FLAG_NONE, 0, options.connection_window);
  return s;
}

Stream* ClientSession::OpenStream(const HeaderRefs& headers, bool end_stream, Stream::Listener* listener,
                                  Status* why) {
  if (goaway_received_) {
    *why = Unavailable("the node is closing this connection (it sent GOAWAY)");
    return nullptr;
  }
  std::vector<nghttp2_nv>& nv = ToNv(headers);
  nghttp2_data_provider provider{};
  provider.read_callback = &Callbacks::ReadData;
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), end_stream ? nullptr : &provider,
                                      nullptr);
  if (id < 0) {
    *why = Unavailable(std::string("cannot open an HTTP/2 stream: ") + nghttp2_strerror(id));
    return nullptr;
  }
  Stream* st = AddStream(id);
  st->listener_ = listener;
  st->data_provider_ = !end_stream;
  if (end_stream) st->local_end_ = Stream::LocalEnd::kDone;
  NotifyWantWrite();
  return st;
}

}  // namespace praefect::http2
