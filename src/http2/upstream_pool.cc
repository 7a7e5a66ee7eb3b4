#include "http2/upstream_pool.h"

#include <unistd.h>

#include <algorithm>

#include "http2/session_driver.h"

namespace praefect::http2 {

// One connection to an upstream, with its client session.
class UpstreamPool::UpstreamConnection final : public SessionDriver {
 public:
  UpstreamConnection(UpstreamPool* pool, Entry* entry, std::unique_ptr<Connection> connection)
      : SessionDriver(pool->loop_, std::move(connection)), pool_(pool), entry_(entry) {}
  ~UpstreamConnection() override {
    if (keepalive_timer_ != 0) loop()->CancelTimer(keepalive_timer_);
  }

  [[nodiscard]] Status Init() {
    auto session = ClientSession::Create(this, pool_->options_.session);
    if (!session.ok()) return session.status();
    client_ = session->get();
    set_session(std::move(*session));
    if (Status st = Start(); !st.ok()) return st;
    ScheduleKeepalive();
    return Status::Ok();
  }

  // Whether a new stream may go on this connection now.
  bool CanTakeStream() const {
    return !closed() && !draining_ && !client_->goaway_received() &&
           client_->open_streams() < std::min<uint32_t>(client_->remote_max_concurrent_streams(), 1000);
  }
  Stream* Open(const HeaderRefs& headers, bool end_stream, Stream::Listener* listener, Status* why) {
    return client_->OpenStream(headers, end_stream, listener, why);
  }
  void Drain() {
    draining_ = true;
    if (!closed()) {
      client_->GoAway(kNoError);
      if (client_->open_streams() == 0) connection()->CloseAfterFlush();
    }
  }

  void OnReceived(const Slice& bytes) override {
    last_received_ = loop()->now();
    ping_outstanding_ = false;
    SessionDriver::OnReceived(bytes);
    if (!closed() && draining_ && client_->open_streams() == 0) connection()->CloseAfterFlush();
  }
  void OnNewStream(Stream* stream) override { stream->Reset(kProtocolError); }  // a node never opens one
  void OnGoAway(int32_t, uint32_t) override {
    // Streams the node did not process are closed by nghttp2 (REFUSED_STREAM);
    // calls that come later go to another connection.
    draining_ = true;
    pool_->ServePending(*entry_);
  }

 private:
  void Closed(const Status&) override { pool_->Forget(this); }

  void ScheduleKeepalive() {
    const auto every = std::max(pool_->options_.keepalive_timeout / 2, std::chrono::milliseconds(100));
    keepalive_timer_ = loop()->AddTimer(every, [this] {
      keepalive_timer_ = 0;
      if (closed()) return;
      const auto now = loop()->now();
      if (ping_outstanding_ && now - ping_sent_ >= pool_->options_.keepalive_timeout) {
        connection()->Close(Unavailable("the node did not answer a keepalive ping within " +
                                        std::to_string(pool_->options_.keepalive_timeout.count()) + " ms"));
        return;
      }
      if (!ping_outstanding_ && client_->open_streams() > 0 && now - last_received_ >= pool_->options_.keepalive_time) {
        client_->Ping();
        ping_outstanding_ = true;
        ping_sent_ = now;
      }
      ScheduleKeepalive();
    });
  }

  UpstreamPool* const pool_;
  Entry* const entry_;
  ClientSession* client_ = nullptr;
  bool draining_ = false;
  EventLoop::TimerId keepalive_timer_ = 0;
  EventLoop::Clock::time_point last_received_ = EventLoop::Clock::now();
  EventLoop::Clock::time_point ping_sent_{};
  bool ping_outstanding_ = false;
};

UpstreamPool::UpstreamPool(EventLoop* loop, Resolver* resolver, UpstreamPoolOptions options)
    : loop_(loop), resolver_(resolver), options_(options) {}

UpstreamPool::~UpstreamPool() {
  attempts_.clear();
  for (auto& [key, entry] : entries_) FailPending(entry, Unavailable("praefect is stopping"));
  // Closing a connection calls Forget, which must not find the maps half gone.
  auto owned = std::move(owned_);
  owned_.clear();
  for (auto& c : owned) {
    if (!c->closed()) c->connection()->Close(Unavailable("praefect is stopping"));
  }
}

UpstreamPool::Entry& UpstreamPool::EntryFor(const std::shared_ptr<const Upstream>& upstream) {
  Entry& e = entries_[upstream.get()];
  if (!e.upstream) e.upstream = upstream;
  return e;
}

uint64_t UpstreamPool::Open(const std::shared_ptr<const Upstream>& upstream, const HeaderRefs& headers, bool end_stream,
                            Stream::Listener* listener, Opened done) {
  const uint64_t ticket = next_ticket_++;
  if (shutting_down_) {
    done(Unavailable("praefect is stopping"));
    return ticket;
  }
  Entry& e = EntryFor(upstream);
  for (UpstreamConnection* c : e.connections) {
    if (!c->CanTakeStream()) continue;
    Status why;
    Stream* st = c->Open(headers, end_stream, listener, &why);
    if (st != nullptr) {
      done(st);
      return ticket;
    }
  }
  if (!e.connecting && loop_->now() < e.fail_fast_until) {
    done(e.last_failure);
    return ticket;
  }
  HeaderList owned;
  owned.reserve(headers.size());
  for (const HeaderRef& f : headers) owned.push_back({std::string(f.name), std::string(f.value)});
  e.pending.push_back(Pending{ticket, std::move(owned), end_stream, listener, std::move(done)});
  if (!e.connecting) Connect(e);
  return ticket;
}

void UpstreamPool::Cancel(uint64_t ticket) {
  for (auto& [key, e] : entries_) {
    auto it = std::find_if(e.pending.begin(), e.pending.end(), [&](const Pending& p) { return p.ticket == ticket; });
    if (it != e.pending.end()) {
      e.pending.erase(it);
      return;
    }
  }
}

void UpstreamPool::Connect(Entry& e) {
  e.connecting = true;
  const Upstream* key = e.upstream.get();
  attempts_[key] = http2::Connect(loop_, resolver_, e.upstream->target, options_.connect_timeout,
                                  [this, key](StatusOr<int> fd) {
                                    auto it = entries_.find(key);
                                    if (it == entries_.end()) {
                                      if (fd.ok()) ::close(*fd);
                                      return;
                                    }
                                    Connected(it->second, std::move(fd));
                                  });
}

void UpstreamPool::Connected(Entry& e, StatusOr<int> fd) {
  e.connecting = false;
  // The attempt is over; its handle goes after this callback returns.
  loop_->DeleteSoon(std::make_unique<std::unique_ptr<ConnectAttempt>>(std::move(attempts_[e.upstream.get()])));
  attempts_.erase(e.upstream.get());
  Status failure;
  if (fd.ok()) {
    std::unique_ptr<SecureLayer> secure;
    if (e.upstream->make_secure) {
      auto made = e.upstream->make_secure();
      if (made.ok()) {
        secure = std::move(*made);
      } else {
        failure = made.status();
      }
    }
    if (failure.ok()) {
      auto conn = std::make_unique<UpstreamConnection>(
          this, &e, std::make_unique<Connection>(loop_, *fd, std::move(secure), e.upstream->target.Describe()));
      if (Status st = conn->Init(); st.ok()) {
        e.connections.push_back(conn.get());
        owned_.push_back(std::move(conn));
        e.backoff = std::chrono::milliseconds(0);
        e.fail_fast_until = {};
        ServePending(e);
        return;
      } else {
        failure = st;
      }
    } else {
      ::close(*fd);
    }
  } else {
    failure = fd.status();
  }
  e.backoff = e.backoff.count() == 0 ? options_.initial_backoff : std::min(e.backoff * 2, options_.max_backoff);
  e.last_failure = Unavailable(e.upstream->label + ": cannot connect to " + e.upstream->target.Describe() + ": " +
                               failure.message());
  e.fail_fast_until = loop_->now() + e.backoff;
  FailPending(e, e.last_failure);
}

void UpstreamPool::ServePending(Entry& e) {
  while (!e.pending.empty()) {
    UpstreamConnection* chosen = nullptr;
    for (UpstreamConnection* c : e.connections) {
      if (c->CanTakeStream()) {
        chosen = c;
        break;
      }
    }
    if (chosen == nullptr) {
      if (!e.connecting && !shutting_down_) Connect(e);
      return;
    }
    Pending p = std::move(e.pending.front());
    e.pending.pop_front();
    Status why;
    Stream* st = chosen->Open(RefsTo(p.headers), p.end_stream, p.listener, &why);
    if (st != nullptr) {
      p.done(st);
    } else {
      p.done(why);
    }
  }
}

void UpstreamPool::FailPending(Entry& e, const Status& why) {
  auto pending = std::move(e.pending);
  e.pending.clear();
  for (Pending& p : pending) p.done(why);
}

void UpstreamPool::Forget(UpstreamConnection* connection) {
  for (auto& [key, e] : entries_) {
    auto it = std::find(e.connections.begin(), e.connections.end(), connection);
    if (it != e.connections.end()) e.connections.erase(it);
  }
  auto it = std::find_if(owned_.begin(), owned_.end(), [&](const auto& c) { return c.get() == connection; });
  if (it != owned_.end()) {
    loop_->DeleteSoon(std::move(*it));
    owned_.erase(it);
  }
}

void UpstreamPool::Shutdown() {
  shutting_down_ = true;
  // Draining an idle connection closes it, which takes it out of owned_.
  std::vector<UpstreamConnection*> connections;
  for (auto& c : owned_) connections.push_back(c.get());
  for (UpstreamConnection* c : connections) c->Drain();
}

size_t UpstreamPool::connections() const { return owned_.size(); }

}  // namespace praefect::http2
