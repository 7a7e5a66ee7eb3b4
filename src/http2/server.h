#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status_or.h"
#include "http2/connection.h"
#include "http2/event_loop.h"
#include "http2/proxy_call.h"
#include "http2/sockets.h"
#include "http2/upstream_pool.h"

// The data plane as a whole: loops, listeners, client connections with
// their HTTP/2 sessions, one upstream pool per loop, and the proxy calls
// between them. The composition root (src/server/) builds one and gives it
// the Director; nothing here knows Gitaly.
namespace praefect::http2 {

struct ServerOptions {
  int loops = 2;
  ProxyOptions proxy;            // director required
  SessionOptions client_session;  // sessions with praefect's clients
  UpstreamPoolOptions upstream;
  // A client's TLS handshake must finish within this.
  std::chrono::milliseconds handshake_timeout{10000};
  // Keepalive enforcement, as Gitaly's: a client that pings more often than
  // this while it has no call open gets GOAWAY ENHANCE_YOUR_CALM.
  std::chrono::milliseconds min_ping_interval{10000};
};

// Thread-safe: its methods may be called from any thread but the loops'.
class Server {
 public:
  // Makes the TLS layer of an accepted connection (a listener with TLS).
  // `peer` names the client in the layer's messages.
  using MakeSecure = std::function<StatusOr<std::unique_ptr<SecureLayer>>(const std::string& peer)>;

  static StatusOr<std::unique_ptr<Server>> Create(ServerOptions options);
  ~Server();  // Stop(0) if still running

  // Serves on `fd` (listening; from ListenTcp/ListenUnix or systemd).
  // `name` names it in logs; `make_secure` non-null for TLS listeners;
  // `on_accept`, when set, is called on a loop for each accepted connection.
  [[nodiscard]] Status AddListener(int fd, std::string name, MakeSecure make_secure = nullptr,
                                   std::function<void()> on_accept = nullptr);

  // Stops accepting, sends GOAWAY to every client, lets the calls in flight
  // finish for at most `grace`, then closes what is left.
  void Stop(std::chrono::milliseconds grace);

  // Whether every loop runs a task within `timeout` (the watchdog's check).
  bool LoopsTurn(std::chrono::milliseconds timeout);

  // Live figures for STATUS= and tests.
  size_t client_connections() const;
  size_t active_calls() const;
  const ProxyStats& stats() const { return stats_; }

 private:
  class ClientConnection;
  class PerLoop;
  explicit Server(ServerOptions options);

  ServerOptions options_;
  ProxyStats stats_;
  std::unique_ptr<LoopGroup> group_;
  std::unique_ptr<Resolver> resolver_;
  std::vector<std::unique_ptr<PerLoop>> per_loop_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  mutable std::mutex mu_;
  bool stopped_ = false;
};

}  // namespace praefect::http2
