#include "http2/sockets.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace praefect::http2 {
namespace {

std::string Errno() { return std::strerror(errno); }

// "host:port", ":port", "[v6]:port" → host (maybe empty) and port.
StatusOr<std::pair<std::string, std::string>> SplitHostPort(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos)
    return InvalidArgument("listen address \"" + std::string(address) + "\" has no port: expected \"host:port\"");
  std::string host(address.substr(0, colon));
  std::string port(address.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, port);
}

std::string PeerName(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  return "unix";
}

void TuneTcp(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace

StatusOr<int> ListenTcp(std::string_view address, std::string_view what) {
  const std::string named = "cannot listen on " + (what.empty() ? std::string() : std::string(what) + " ") + "\"" +
                            std::string(address) + "\": ";
  auto parts = SplitHostPort(address);
  if (!parts.ok()) return parts.status();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string& host = parts->first;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), parts->second.c_str(), &hints, &res);
  if (rc != 0)
    return InvalidArgument(named + gai_strerror(rc) +
                           ": use an address of this machine, or \":port\" for every interface");
  std::string last_error = "no address";
  int last_errno = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_errno = errno;
      last_error = Errno();
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 1024) == 0) {
      freeaddrinfo(res);
      return fd;
    }
    last_errno = errno;
    last_error = Errno();
    close(fd);
  }
  freeaddrinfo(res);
  std::string advice = last_errno == EADDRINUSE ? "another process listens there: stop it, or choose another port"
                       : last_errno == EADDRNOTAVAIL
                           ? "this machine has no such address: use one of its addresses, or \":port\" for every "
                             "interface"
                       : last_errno == EACCES ? "ports below 1024 need privileges praefect does not have: choose "
                                                "another port, or let systemd pass the socket (praefect.socket)"
                                              : "check the address";
  return Unavailable(named + last_error + ": " + advice);
}

StatusOr<int> ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return InvalidArgument("socket_path \"" + path + "\" is longer than " + std::to_string(sizeof addr.sun_path - 1) +
                           " bytes, the limit of unix socket paths: choose a shorter path");
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable("socket_path \"" + path + "\": " + Errno());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 1024) != 0) {
    std::string e = Errno();
    close(fd);
    return Unavailable("cannot listen on socket_path \"" + path + "\": " + e);
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return 0;
}

// ---- Listener ----------------------------------------------------------------

class Listener::PerLoop final : public IoHandler {
 public:
  PerLoop(Listener* listener, EventLoop* loop) : listener_(listener), loop_(loop) {}
  void OnIoEvent(uint32_t) override {
    // A bounded batch per wake-up: the other loops get their share.
    for (int i = 0; i < 32; ++i) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      int fd = accept4(listener_->fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        // EAGAIN: another loop took it. EMFILE and friends: try again on
        // the next wake-up (level-triggered) rather than spin here.
        return;
      }
      if (addr.ss_family == AF_INET || addr.ss_family == AF_INET6) TuneTcp(fd);
      listener_->on_accept_(*loop_, fd, PeerName(addr));
    }
  }
  EventLoop* loop() const { return loop_; }

 private:
  Listener* const listener_;
  EventLoop* const loop_;
};

Listener::Listener(int fd, std::string name, OnAccept on_accept)
    : fd_(fd), name_(std::move(name)), on_accept_(std::move(on_accept)) {}

Listener::~Listener() { Stop(); }

Status Listener::Start(LoopGroup* group) {
  group_ = group;
  // Sockets passed by systemd may be blocking: every loop wakes for a
  // connection only one of them takes, and accept() must not wait in the others.
  if (int flags = fcntl(fd_, F_GETFL); flags >= 0) fcntl(fd_, F_SETFL, flags | O_NONBLOCK);
  for (size_t i = 0; i < group->size(); ++i) per_loop_.push_back(std::make_unique<PerLoop>(this, &group->loop(i)));
  Status result = Status::Ok();
  group->RunOnAll([&](EventLoop& loop) {
    for (auto& p : per_loop_) {
      if (p->loop() != &loop) continue;
      if (Status st = loop.Add(fd_, EPOLLIN | EPOLLEXCLUSIVE, p.get()); !st.ok()) result = st;
    }
  });
  if (!result.ok()) return Internal(name_ + ": cannot watch the listening socket: " + result.message());
  return Status::Ok();
}

void Listener::Stop() {
  if (fd_ < 0) return;
  if (group_ != nullptr) group_->RunOnAll([this](EventLoop& loop) { loop.Remove(fd_); });
  close(fd_);
  fd_ = -1;
  per_loop_.clear();
}

// ---- Resolver ----------------------------------------------------------------

struct Resolver::State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<std::string, Done>> queue;
  bool stopping = false;
  std::thread thread;
};

Resolver::Resolver() : state_(std::make_shared<State>()) {
  state_->thread = std::thread([s = state_.get()] {
    for (;;) {
      std::pair<std::string, Done> job;
      {
        std::unique_lock lock(s->mu);
        s->cv.wait(lock, [s] { return s->stopping || !s->queue.empty(); });
        if (s->stopping) return;
        job = std::move(s->queue.front());
        s->queue.pop_front();
      }
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* res = nullptr;
      int rc = getaddrinfo(job.first.c_str(), nullptr, &hints, &res);
      if (rc != 0) {
        job.second(Unavailable("cannot resolve \"" + job.first + "\": " + gai_strerror(rc)));
        continue;
      }
      std::vector<std::string> out;
      for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        char host[INET6_ADDRSTRLEN];
        const void* a = ai->ai_family == AF_INET
                            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
        if (inet_ntop(ai->ai_family, a, host, sizeof host) != nullptr) out.emplace_back(host);
      }
      freeaddrinfo(res);
      job.second(std::move(out));
    }
  });
}

Resolver::~Resolver() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
    state_->queue.clear();
  }
  state_->cv.notify_all();
  state_->thread.join();
}

void Resolver::Resolve(std::string host, Done done) {
  {
    std::lock_guard lock(state_->mu);
    state_->queue.emplace_back(std::move(host), std::move(done));
  }
  state_->cv.notify_one();
}

// ---- Connect -----------------------------------------------------------------

std::string ConnectTarget::Describe() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

// The state of one attempt, shared with the resolver's callback (which may
// outlive the handle: it then finds `cancelled`).
struct AttemptState final : IoHandler {
  EventLoop* loop = nullptr;
  ConnectTarget target;
  ConnectDone done;
  bool cancelled = false;
  bool finished = false;
  int fd = -1;
  EventLoop::TimerId timer = 0;

  void Finish(StatusOr<int> result) {
    if (finished) return;
    finished = true;
    if (timer != 0) loop->CancelTimer(timer);
    if (fd >= 0) loop->Remove(fd);
    if (!result.ok() && fd >= 0) close(fd);
    fd = -1;
    if (!cancelled) {
      ConnectDone d = std::move(done);
      d(std::move(result));
    } else if (result.ok()) {
      close(*result);
    }
  }

  void Start(const std::string& numeric_host) {
    sockaddr_storage addr{};
    socklen_t len = 0;
    int family = AF_UNIX;
    if (target.kind == ConnectTarget::Kind::kUnix) {
      auto* un = reinterpret_cast<sockaddr_un*>(&addr);
      un->sun_family = AF_UNIX;
      if (target.path.size() >= sizeof un->sun_path)
        return Finish(InvalidArgument("unix socket path \"" + target.path + "\" is too long"));
      std::memcpy(un->sun_path, target.path.data(), target.path.size());
      len = sizeof(sockaddr_un);
    } else if (auto* in4 = reinterpret_cast<sockaddr_in*>(&addr);
               inet_pton(AF_INET, numeric_host.c_str(), &in4->sin_addr) == 1) {
      family = AF_INET;
      in4->sin_family = AF_INET;
      in4->sin_port = htons(static_cast<uint16_t>(target.port));
      len = sizeof(sockaddr_in);
    } else if (auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
               inet_pton(AF_INET6, numeric_host.c_str(), &in6->sin6_addr) == 1) {
      family = AF_INET6;
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(static_cast<uint16_t>(target.port));
      len = sizeof(sockaddr_in6);
    } else {
      return Finish(InvalidArgument("\"" + numeric_host + "\" is not an IP address"));
    }
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Finish(Unavailable("cannot connect to " + target.Describe() + ": " + Errno()));
    if (family != AF_UNIX) TuneTcp(fd);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0) return Finish(fd);
    if (errno != EINPROGRESS && errno != EAGAIN)
      return Finish(Unavailable("cannot connect to " + target.Describe() + ": " + Errno()));
    if (Status st = loop->Add(fd, EPOLLOUT, this); !st.ok()) return Finish(st);
  }

  void OnIoEvent(uint32_t) override {
    if (finished || fd < 0) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      return Finish(Unavailable("cannot connect to " + target.Describe() + ": " + Errno()));
    }
    int connected = fd;
    loop->Remove(fd);
    fd = -1;
    Finish(connected);
  }
};

class AttemptHandle final : public ConnectAttempt {
 public:
  explicit AttemptHandle(std::shared_ptr<AttemptState> state) : state_(std::move(state)) {}
  ~AttemptHandle() override {
    state_->cancelled = true;
    // A socket still connecting is closed now; a resolution in flight finds
    // `cancelled` when it comes back.
    if (!state_->finished) state_->Finish(Cancelled("connection attempt abandoned"));
    // The loop may still hold the state as an IoHandler for this batch.
    state_->loop->DeleteSoon(std::make_unique<std::shared_ptr<AttemptState>>(std::move(state_)));
  }

 private:
  std::shared_ptr<AttemptState> state_;
};

}  // namespace

std::unique_ptr<ConnectAttempt> Connect(EventLoop* loop, Resolver* resolver, const ConnectTarget& target,
                                        std::chrono::milliseconds timeout, ConnectDone done) {
  auto state = std::make_shared<AttemptState>();
  state->loop = loop;
  state->target = target;
  state->done = std::move(done);
  std::weak_ptr<AttemptState> weak = state;
  state->timer = loop->AddTimer(timeout, [weak] {
    if (auto s = weak.lock()) {
      s->timer = 0;
      s->Finish(DeadlineExceeded("cannot connect to " + s->target.Describe() + ": no answer within the timeout"));
    }
  });
  sockaddr_in6 probe{};
  const bool numeric = target.kind == ConnectTarget::Kind::kUnix ||
                       inet_pton(AF_INET, target.host.c_str(), &probe.sin6_addr) == 1 ||
                       inet_pton(AF_INET6, target.host.c_str(), &probe.sin6_addr) == 1;
  if (numeric) {
    state->Start(target.host);
  } else {
    resolver->Resolve(target.host, [loop, weak](StatusOr<std::vector<std::string>> addresses) {
      loop->Post([weak, addresses = std::move(addresses)]() mutable {
        auto s = weak.lock();
        if (!s || s->finished) return;
        if (!addresses.ok()) return s->Finish(addresses.status());
        if (addresses->empty()) return s->Finish(Unavailable("\"" + s->target.host + "\" has no address"));
        s->Start(addresses->front());
      });
    });
  }
  return std::make_unique<AttemptHandle>(std::move(state));
}

}  // namespace praefect::http2
