#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"
#include "http2/event_loop.h"

// Listening and connecting sockets for the data plane: the listeners of the
// configuration or of systemd, accepted on every loop; and the non-blocking
// connections to nodes.
namespace praefect::http2 {

// A listening TCP socket on `address` ("host:port", ":port", "[v6]:port"),
// non-blocking, close-on-exec, SO_REUSEADDR. Errors name the address and
// what to do ("Address already in use: another process listens there").
// `what` names the address in messages ("listen_addr"); may be empty.
StatusOr<int> ListenTcp(std::string_view address, std::string_view what = "");
// A listening unix socket at `path` (the caller prepares the path).
StatusOr<int> ListenUnix(const std::string& path);
// The port a listening TCP socket is bound to.
int BoundPort(int fd);

// Accepts connections on one listening socket, on every loop of a group:
// each loop watches the socket (EPOLLEXCLUSIVE, so one loop wakes per
// connection) and keeps what it accepted. Not thread-safe; Stop before
// deleting, from any thread that is not a loop of the group.
class Listener {
 public:
  // Called on the accepting loop with the new connection's fd and peer.
  using OnAccept = std::function<void(EventLoop& loop, int fd, std::string peer)>;

  // Takes `fd` (listening; passed by systemd or made by ListenTcp/Unix).
  // `name` names it in messages ("listen_addr 127.0.0.1:2305").
  Listener(int fd, std::string name, OnAccept on_accept);
  ~Listener();

  // Starts accepting on each loop of `group`.
  [[nodiscard]] Status Start(LoopGroup* group);
  // Stops accepting and closes the socket; returns once no loop watches it.
  void Stop();

  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

 private:
  class PerLoop;
  int fd_;
  const std::string name_;
  OnAccept on_accept_;
  LoopGroup* group_ = nullptr;
  std::vector<std::unique_ptr<PerLoop>> per_loop_;
};

// Where a node is: a resolved socket address to connect to.
struct ConnectTarget {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;  // kTcp: a name or a numeric address
  int port = 0;      // kTcp
  std::string path;  // kUnix
  std::string Describe() const;
};

// Resolves host names off the loops (getaddrinfo blocks), one at a time,
// on a thread of its own. Thread-safe. Destroy it before the loops its
// callers post to: it joins its thread, dropping what is still queued.
class Resolver {
 public:
  using Done = std::function<void(StatusOr<std::vector<std::string>> addresses)>;  // numeric, each "ip"
  Resolver();
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;
  // Calls `done` on the resolver's thread.
  void Resolve(std::string host, Done done);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Starts connecting to `target` on `loop`; calls `done` on the loop with the
// connected non-blocking fd, or why not ("connection refused", "no such
// host"). Host names go through `resolver`; numeric addresses and unix
// paths connect at once. `timeout` bounds the whole attempt. Destroying the
// returned handle before `done` ran cancels the attempt (`done` is then
// never called). REQUIRES: on the loop's thread; `resolver` outlives the
// attempt's resolution.
class ConnectAttempt {
 public:
  virtual ~ConnectAttempt() = default;
};
using ConnectDone = std::function<void(StatusOr<int> fd)>;
std::unique_ptr<ConnectAttempt> Connect(EventLoop* loop, Resolver* resolver, const ConnectTarget& target,
                                        std::chrono::milliseconds timeout, ConnectDone done);

}  // namespace praefect::http2
