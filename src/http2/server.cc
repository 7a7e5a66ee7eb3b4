#include "http2/server.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>
#include <unordered_set>

#include "http2/session_driver.h"
#include "log/log.h"

namespace praefect::http2 {

// What one loop holds: its client connections and its upstream pool.
class Server::PerLoop {
 public:
  PerLoop(EventLoop* loop, Resolver* resolver, const ServerOptions* options)
      : loop(loop), options(options), pool(std::make_unique<UpstreamPool>(loop, resolver, options->upstream)) {}

  EventLoop* const loop;
  const ServerOptions* const options;
  std::unique_ptr<UpstreamPool> pool;
  std::unordered_set<ClientConnection*> connections;
  std::atomic<size_t> connection_count{0};
  bool stopping = false;
};

// One client's connection.
class Server::ClientConnection final : public SessionDriver {
 public:
  ClientConnection(PerLoop* per_loop, std::unique_ptr<Connection> connection)
      : SessionDriver(per_loop->loop, std::move(connection)), per_loop_(per_loop) {}
  ~ClientConnection() override {
    if (handshake_timer_ != 0) loop()->CancelTimer(handshake_timer_);
  }

  [[nodiscard]] Status Init() {
    auto session = ServerSession::Create(this, per_loop_->options->client_session);
    if (!session.ok()) return session.status();
    server_ = session->get();
    set_session(std::move(*session));
    if (Status st = Start(); !st.ok()) return st;
    if (connection()->secure() != nullptr) {
      handshake_timer_ = loop()->AddTimer(per_loop_->options->handshake_timeout, [this] {
        handshake_timer_ = 0;
        if (!closed() && !connection()->secure()->handshake_done())
          connection()->Close(DeadlineExceeded("TLS handshake with " + peer() + " did not finish in time"));
      });
    }
    if (per_loop_->stopping) GoAway();
    return Status::Ok();
  }

  void GoAway() {
    if (closed() || going_away_) return;
    going_away_ = true;
    server_->GoAway(kNoError, "praefect is stopping");
    Produce();
    if (server_->open_streams() == 0 && !closed()) connection()->CloseAfterFlush();
  }

  size_t open_streams() const { return closed() ? 0 : server_->open_streams(); }

  void OnNewStream(Stream* stream) override {
    ProxyCall::Start(loop(), &per_loop_->options->proxy, per_loop_->pool.get(), stream);
  }
  void OnGoAway(int32_t, uint32_t) override {}
  void OnPingReceived() override {
    // Gitaly's (gRPC's) keepalive policy: a ping is expected after praefect
    // sent data or headers; without that, pings at most every
    // min_ping_interval, and the third one too early closes the connection.
    const auto now = loop()->now();
    if (!sent_since_ping_ && last_ping_ != EventLoop::Clock::time_point{} &&
        now - last_ping_ < per_loop_->options->min_ping_interval) {
      if (++ping_strikes_ > 2) {
        log::Warn("closing a client connection: it sends keepalive pings more often than every " +
                      std::to_string(per_loop_->options->min_ping_interval.count() / 1000) +
                      " s without calls (GOAWAY too_many_pings); configure the client's keepalive time to 20 s or "
                      "more, as for Gitaly",
                  {{"peer", peer()}});
        server_->GoAway(kEnhanceYourCalm, "too_many_pings");
        CloseSoon();
      }
    }
    sent_since_ping_ = false;
    last_ping_ = now;
  }
  void OnDataOrHeadersSent() override {
    sent_since_ping_ = true;
    ping_strikes_ = 0;
  }
  void OnReceived(const Slice& bytes) override {
    SessionDriver::OnReceived(bytes);
    if (!closed() && going_away_ && server_->open_streams() == 0) connection()->CloseAfterFlush();
  }

 private:
  void Closed(const Status&) override {
    per_loop_->connections.erase(this);
    per_loop_->connection_count.fetch_sub(1, std::memory_order_relaxed);
    loop()->DeleteSoon(std::unique_ptr<ClientConnection>(this));
  }

  PerLoop* const per_loop_;
  ServerSession* server_ = nullptr;
  EventLoop::TimerId handshake_timer_ = 0;
  bool going_away_ = false;
  EventLoop::Clock::time_point last_ping_{};
  bool sent_since_ping_ = false;
  int ping_strikes_ = 0;
};

Server::Server(ServerOptions options) : options_(std::move(options)) { options_.proxy.stats = &stats_; }

StatusOr<std::unique_ptr<Server>> Server::Create(ServerOptions options) {
  if (options.proxy.director == nullptr) return Internal("http2::Server needs a director");
  std::unique_ptr<Server> server(new Server(std::move(options)));
  auto group = LoopGroup::Create(std::max(1, server->options_.loops));
  if (!group.ok()) return group.status();
  server->group_ = std::move(*group);
  server->resolver_ = std::make_unique<Resolver>();
  for (size_t i = 0; i < server->group_->size(); ++i)
    server->per_loop_.push_back(
        std::make_unique<PerLoop>(&server->group_->loop(i), server->resolver_.get(), &server->options_));
  return server;
}

Server::~Server() {
  Stop(std::chrono::milliseconds(0));
  // The loops are stopped: what belongs to them goes on this thread, the
  // client connections (and their calls) first, then the pools.
  for (auto& p : per_loop_) {
    auto connections = p->connections;
    for (ClientConnection* c : connections) {
      if (!c->closed()) c->connection()->Close(Unavailable("praefect stopped"));
    }
  }
  for (auto& p : per_loop_) p->pool.reset();
  listeners_.clear();
  group_.reset();  // runs what is left on the loops (posted answers, deletions)
  per_loop_.clear();
  resolver_.reset();
}

Status Server::AddListener(int fd, std::string name, MakeSecure make_secure, std::function<void()> on_accept) {
  auto listener = std::make_unique<Listener>(
      fd, name, [this, make_secure, name, on_accept](EventLoop& loop, int conn_fd, std::string peer) {
        if (on_accept) on_accept();
        PerLoop* p = nullptr;
        for (auto& candidate : per_loop_) {
          if (candidate->loop == &loop) p = candidate.get();
        }
        std::unique_ptr<SecureLayer> secure;
        if (make_secure) {
          auto made = make_secure(peer);
          if (!made.ok()) {
            ::close(conn_fd);
            return;
          }
          secure = std::move(*made);
        }
        auto conn = std::make_unique<ClientConnection>(
            p, std::make_unique<Connection>(&loop, conn_fd, std::move(secure), std::move(peer)));
        ClientConnection* raw = conn.get();
        if (!raw->Init().ok()) {
          loop.DeleteSoon(std::move(conn));
          return;
        }
        p->connections.insert(conn.release());
        p->connection_count.fetch_add(1, std::memory_order_relaxed);
        (void)name;
      });
  if (Status st = listener->Start(group_.get()); !st.ok()) return st;
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(listener));
  return Status::Ok();
}

void Server::Stop(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  for (auto& l : listeners_) l->Stop();
  group_->RunOnAll([this](EventLoop& loop) {
    for (auto& p : per_loop_) {
      if (p->loop != &loop) continue;
      p->stopping = true;
      auto connections = p->connections;
      for (ClientConnection* c : connections) c->GoAway();
    }
  });
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (client_connections() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  group_->RunOnAll([this](EventLoop& loop) {
    for (auto& p : per_loop_) {
      if (p->loop != &loop) continue;
      auto connections = p->connections;
      for (ClientConnection* c : connections) {
        if (!c->closed()) c->connection()->Close(Unavailable("praefect stopped before the call finished"));
      }
      p->pool->Shutdown();
    }
  });
  group_->StopAndJoin();
}

bool Server::LoopsTurn(std::chrono::milliseconds timeout) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    size_t left;
  };
  auto wait = std::make_shared<Wait>();
  {
    std::lock_guard lock(mu_);
    if (stopped_) return true;
    wait->left = per_loop_.size();
    for (auto& p : per_loop_) {
      p->loop->Post([wait] {
        std::lock_guard l(wait->mu);
        if (--wait->left == 0) wait->cv.notify_all();
      });
    }
  }
  std::unique_lock l(wait->mu);
  return wait->cv.wait_for(l, timeout, [&] { return wait->left == 0; });
}

size_t Server::client_connections() const {
  size_t n = 0;
  for (const auto& p : per_loop_) n += p->connection_count.load(std::memory_order_relaxed);
  return n;
}

size_t Server::active_calls() const {
  std::atomic<size_t> n{0};
  std::lock_guard lock(mu_);
  if (stopped_) return 0;
  group_->RunOnAll([&](EventLoop& loop) {
    for (const auto& p : per_loop_) {
      if (p->loop != &loop) continue;
      for (ClientConnection* c : p->connections) n += c->open_streams();
    }
  });
  return n.load();
}

}  // namespace praefect::http2
