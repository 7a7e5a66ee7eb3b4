#include "metrics/exposer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>

#include "metrics/listen_socket.h"

namespace praefect::metrics {

namespace {

constexpr size_t kMaxRequestHeader = 16 * 1024;

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits until `fd` is ready for `events`, the deadline passes (false) or the
// exposer is being stopped (false).
bool WaitFor(int fd, short events, int wake_fd, Clock::time_point deadline) {
  for (;;) {
    struct pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    int timeout = MillisLeft(deadline);
    if (timeout == 0) return false;
    int n = poll(fds, 2, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || (fds[1].revents & POLLIN)) return false;
    return true;
  }
}

std::string Reply(std::string_view status, std::string_view content_type, std::string_view body, bool head,
                  std::string_view extra_headers = "") {
  std::string out = "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_headers;
  out += "\r\n";
  if (!head) out += body;
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<Exposer>> Exposer::Listen(std::string_view address, std::vector<Endpoint> endpoints) {
  StatusOr<int> fd = ListenTcp(address);
  if (!fd.ok()) return fd.status();
  return Adopt(*fd, std::move(endpoints));
}

StatusOr<std::unique_ptr<Exposer>> Exposer::Adopt(int fd, std::vector<Endpoint> endpoints) {
  if (Status st = CheckListeningSocket(fd); !st.ok()) {
    close(fd);
    return st;
  }
  // Non-blocking, so that a connection reset between poll() and accept()
  // cannot block the loop.
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    Status st = Internal(std::string("metrics socket: cannot make it non-blocking: ") + std::strerror(errno));
    close(fd);
    return st;
  }
  int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    Status st = Internal(std::string("metrics server: eventfd: ") + std::strerror(errno));
    close(fd);
    return st;
  }
  return std::unique_ptr<Exposer>(new Exposer(fd, wake, std::move(endpoints)));
}

Exposer::Exposer(int listen_fd, int wake_fd, std::vector<Endpoint> endpoints)
    : listen_fd_(listen_fd),
      wake_fd_(wake_fd),
      port_(LocalPort(listen_fd)),
      endpoints_(std::move(endpoints)),
      thread_([this] { Run(); }) {}

Exposer::~Exposer() {
  uint64_t one = 1;
  while (write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(wake_fd_);
  close(listen_fd_);
}

void Exposer::Run() {
  for (;;) {
    struct pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // cannot happen with valid descriptors
    }
    if (fds[1].revents & POLLIN) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) continue;  // EAGAIN, ECONNABORTED, EMFILE: try again on the next event
    Serve(conn);
    close(conn);
  }
}

void Exposer::Serve(int conn) {
  const Clock::time_point deadline = Clock::now() + kConnectionDeadline;
  std::string request;
  char buf[4096];
  while (request.find("\r\n\r\n") == std::string::npos) {
    if (request.size() > kMaxRequestHeader || !WaitFor(conn, POLLIN, wake_fd_, deadline)) return;
    ssize_t n = recv(conn, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return;
    request.append(buf, static_cast<size_t>(n));
  }
  std::string response = Respond(request);
  size_t sent = 0;
  while (sent < response.size()) {
    ssize_t n = send(conn, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      if (!WaitFor(conn, POLLOUT, wake_fd_, deadline)) return;
      continue;
    }
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
  // Tell the client the response is complete, then let close() drop the rest.
  shutdown(conn, SHUT_WR);
}

std::string Exposer::Respond(std::string_view request) const {
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  // Request line: METHOD SP target SP HTTP/1.x
  std::string_view line = request.substr(0, request.find("\r\n"));
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1, 7) != "HTTP/1.") {
    return Reply("400 Bad Request", kText, "malformed HTTP/1.x request line\n", false);
  }
  std::string_view method = line.substr(0, sp1);
  std::string_view path = line.substr(sp1 + 1, sp2 - sp1 - 1);
  path = path.substr(0, path.find('?'));
  bool head = method == "HEAD";
  if (method != "GET" && !head) {
    return Reply("405 Method Not Allowed", kText, "only GET and HEAD\n", false, "Allow: GET, HEAD\r\n");
  }
  for (const Endpoint& endpoint : endpoints_) {
    if (endpoint.path != path) continue;
    std::string body;
    try {
      body = endpoint.render();
    } catch (const std::exception& e) {
      return Reply("500 Internal Server Error", kText, std::string("collecting metrics failed: ") + e.what() + "\n",
                   head);
    }
    return Reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", body, head);
  }
  return Reply("404 Not Found", kText, "404 page not found\n", head);
}

Exposer::Endpoint MetricsEndpoint(const Metrics& metrics, std::string path) {
  return {std::move(path), [&metrics] { return metrics.Render(); }};
}

}  // namespace praefect::metrics
