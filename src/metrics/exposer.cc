#include "metrics/exposer.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <system_error>

#include "metrics/listen_socket.h"

namespace praefect::metrics {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kText = "text/plain; charset=utf-8";
// How long the accept loop waits when out of descriptors or memory before it
// tries again (the pending connection would wake poll() at once otherwise).
constexpr int kAcceptRetryMillis = 100;

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits until `fd` is ready for `events` (or has an error), the deadline
// passes (false) or the exposer is being stopped (false).
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

// An answer closing the connection; without the body when answering HEAD.
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

// RFC 9110's tchar: the characters of a method or a header field name.
bool IsTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenChar); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x >= 'A' && x <= 'Z' ? x - 'A' + 'a' : x) == (y >= 'A' && y <= 'Z' ? y - 'A' + 'a' : y);
         });
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Client text quoted in an answer, cut short.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 80;
  return "\"" + std::string(s.substr(0, kMax)) + (s.size() > kMax ? "...\"" : "\"");
}

struct RequestLine {
  std::string_view method;
  std::string_view path;  // without the query string
};

// "METHOD SP request-target SP HTTP/1.x", exactly; nullopt otherwise.
std::optional<RequestLine> ParseRequestLine(std::string_view line) {
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(method) || target.empty()) return std::nullopt;
  if (std::any_of(target.begin(), target.end(), [](char c) { return c <= ' ' || c == '\x7f'; })) return std::nullopt;
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." || version[7] < '0' || version[7] > '9') {
    return std::nullopt;
  }
  return RequestLine{method, target.substr(0, target.find('?'))};
}

// Why the header fields (each ending in CRLF, up to the empty line) make the
// request one to refuse with 400; "" when they do not. A scrape has no body.
std::string HeaderProblem(std::string_view fields) {
  while (!fields.empty()) {
    size_t eol = fields.find("\r\n");
    std::string_view field = fields.substr(0, eol);
    fields.remove_prefix(eol == std::string_view::npos ? fields.size() : eol + 2);
    if (field.empty()) break;
    size_t colon = field.find(':');
    if (colon == std::string_view::npos || !IsToken(field.substr(0, colon))) {
      return "malformed header field " + Quote(field) + ": expected \"Name: value\"";
    }
    std::string_view name = field.substr(0, colon);
    std::string_view value = TrimSpace(field.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      return "a metrics request has no body, but this one has Transfer-Encoding: " + Quote(value);
    }
    if (EqualsIgnoreCase(name, "Content-Length")) {
      if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return "malformed Content-Length " + Quote(value);
      }
      if (value.find_first_not_of('0') != std::string_view::npos) {
        return "a metrics request has no body, but this one has Content-Length: " + Quote(value);
      }
    }
  }
  return "";
}

enum class HeadRead {
  kComplete,   // the head up to its empty line, or a malformed request line
  kTooLarge,   // over Exposer::kMaxRequestHeader
  kAbandoned,  // deadline, end of stream, error, or the exposer stopping
};

// Reads a request head into `*head`. Stops early at a complete request line
// that is malformed: what follows would not be HTTP/1.x anyway.
HeadRead ReadHead(int conn, int wake_fd, Clock::time_point deadline, std::string* head) {
  char buf[4096];
  for (;;) {
    size_t end = head->find("\r\n\r\n");
    if (end != std::string::npos) {
      if (end + 4 > Exposer::kMaxRequestHeader) return HeadRead::kTooLarge;
      head->resize(end + 4);
      return HeadRead::kComplete;
    }
    if (head->size() >= Exposer::kMaxRequestHeader) return HeadRead::kTooLarge;
    size_t eol = head->find("\r\n");
    if (eol != std::string::npos && !ParseRequestLine(std::string_view(*head).substr(0, eol))) {
      return HeadRead::kComplete;
    }
    if (!WaitFor(conn, POLLIN, wake_fd, deadline)) return HeadRead::kAbandoned;
    ssize_t n = recv(conn, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return HeadRead::kAbandoned;
    head->append(buf, static_cast<size_t>(n));
  }
}

bool SendAll(int conn, std::string_view data, int wake_fd, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = send(conn, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      if (!WaitFor(conn, POLLOUT, wake_fd, deadline)) return false;
      continue;
    }
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Reads and drops what `conn` (non-blocking) has received. True once the
// client has closed its end (or the connection failed).
bool Drain(int conn) {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(conn, buf, sizeof buf, 0);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    return !(n < 0 && errno == EAGAIN);
  }
}

// Closes `conn` after the answer: signals its end, then waits up to
// kLingerTime for the client to close first. Closing with unread bytes (the
// rest of a refused request) would reset the connection, and a reset can
// destroy the answer before the client has read it.
void LingeringClose(int conn, int wake_fd) {
  shutdown(conn, SHUT_WR);
  const Clock::time_point deadline = Clock::now() + Exposer::kLingerTime;
  while (!Drain(conn) && WaitFor(conn, POLLIN, wake_fd, deadline)) {
  }
  close(conn);
}

// Connections over the limit, answered 503 by the accept loop and closed as
// LingeringClose() would, without blocking it: each waits in the loop's poll
// set until its client closes or kLingerTime passes. At most kMaxConnections
// wait; past that the oldest is closed at once.
class RefusedConnections {
 public:
  RefusedConnections() = default;
  RefusedConnections(const RefusedConnections&) = delete;
  RefusedConnections& operator=(const RefusedConnections&) = delete;
  ~RefusedConnections() {
    for (const Entry& entry : entries_) close(entry.fd);
  }

  // Answers `conn` 503. Takes ownership of it.
  void Refuse(int conn) {
    static const std::string kAnswer = Reply("503 Service Unavailable", kText,
                                             "too many concurrent metrics requests (at most " +
                                                 std::to_string(Exposer::kMaxConnections) + "); retry later\n",
                                             false, "Retry-After: 1\r\n");
    // A new connection's send buffer takes the whole answer: this cannot block.
    ssize_t sent = send(conn, kAnswer.data(), kAnswer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)sent;
    shutdown(conn, SHUT_WR);
    if (Drain(conn)) {
      close(conn);
      return;
    }
    if (entries_.size() >= Exposer::kMaxConnections) {
      close(entries_.front().fd);
      entries_.erase(entries_.begin());
    }
    entries_.push_back({conn, Clock::now() + Exposer::kLingerTime});
  }

  void AppendPollFds(std::vector<struct pollfd>* fds) const {
    for (const Entry& entry : entries_) fds->push_back({entry.fd, POLLIN, 0});
  }

  // The poll() timeout until the next expiry, in milliseconds; -1 for none.
  int PollTimeout() const {
    if (entries_.empty()) return -1;
    return MillisLeft(std::min_element(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
                        return a.deadline < b.deadline;
                      })->deadline);
  }

  // `fds`: the entries AppendPollFds() appended, after poll().
  void Handle(const struct pollfd* fds) {
    const Clock::time_point now = Clock::now();
    std::vector<Entry> kept;
    for (size_t i = 0; i < entries_.size(); ++i) {
      if ((fds[i].revents != 0 && Drain(entries_[i].fd)) || now >= entries_[i].deadline) {
        close(entries_[i].fd);
      } else {
        kept.push_back(entries_[i]);
      }
    }
    entries_.swap(kept);
  }

 private:
  struct Entry {
    int fd;
    Clock::time_point deadline;
  };
  std::vector<Entry> entries_;
};

// The connection threads, owned by the accept loop. Not thread-safe: only the
// accept loop calls it. Its destructor joins every thread.
class ConnectionThreads {
 public:
  ConnectionThreads() = default;
  ConnectionThreads(const ConnectionThreads&) = delete;
  ConnectionThreads& operator=(const ConnectionThreads&) = delete;
  ~ConnectionThreads() {
    for (const std::unique_ptr<Entry>& entry : entries_) entry->thread.join();
  }

  // Joins the threads that are done; returns how many still run.
  size_t Reap() {
    std::vector<std::unique_ptr<Entry>> running;
    for (std::unique_ptr<Entry>& entry : entries_) {
      if (entry->done.load(std::memory_order_acquire)) {
        entry->thread.join();  // returning, if not returned yet
      } else {
        running.push_back(std::move(entry));
      }
    }
    entries_.swap(running);
    return entries_.size();
  }

  // Runs `serve` on a new thread; false when none can be started.
  bool Start(std::function<void()> serve) {
    entries_.push_back(std::make_unique<Entry>());
    Entry* entry = entries_.back().get();
    try {
      entry->thread = std::thread([entry, serve = std::move(serve)] {
        serve();
        entry->done.store(true, std::memory_order_release);
      });
    } catch (const std::system_error&) {
      entries_.pop_back();
      return false;
    }
    return true;
  }

 private:
  struct Entry {
    std::atomic<bool> done{false};
    std::thread thread;
  };
  std::vector<std::unique_ptr<Entry>> entries_;
};

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
  // Never read: it stays readable, and stops every thread polling it.
  uint64_t one = 1;
  while (write(wake_fd_, &one, sizeof one) < 0 && errno == EINTR) {
  }
  thread_.join();
  close(wake_fd_);
  close(listen_fd_);
}

void Exposer::Run() {
  ConnectionThreads connections;  // destroyed last: joined once the loop ends
  RefusedConnections refused;
  std::vector<struct pollfd> fds;
  for (;;) {
    fds = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    refused.AppendPollFds(&fds);
    int n = poll(fds.data(), fds.size(), refused.PollTimeout());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;  // poll() fails otherwise only without memory
    refused.Handle(fds.data() + 2);
    if (!(fds[0].revents & POLLIN)) continue;
    int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        struct pollfd wake = {wake_fd_, POLLIN, 0};
        poll(&wake, 1, kAcceptRetryMillis);
      }
      continue;  // EAGAIN, ECONNABORTED, ...: try again on the next event
    }
    if (connections.Reap() >= kMaxConnections || !connections.Start([this, conn] { Serve(conn); })) {
      refused.Refuse(conn);
    }
  }
}

void Exposer::Serve(int conn) const {
  std::string head;
  std::string answer;
  switch (ReadHead(conn, wake_fd_, Clock::now() + kConnectionDeadline, &head)) {
    case HeadRead::kAbandoned:
      close(conn);
      return;
    case HeadRead::kTooLarge:
      answer = Reply("431 Request Header Fields Too Large", kText,
                     "request line and headers over " + std::to_string(kMaxRequestHeader / 1024) + " KiB\n", false);
      break;
    case HeadRead::kComplete:
      answer = Respond(head);
      break;
  }
  if (SendAll(conn, answer, wake_fd_, Clock::now() + kSendDeadline)) {
    LingeringClose(conn, wake_fd_);
  } else {
    close(conn);
  }
}

std::string Exposer::Respond(std::string_view head) const {
  size_t eol = head.find("\r\n");
  std::optional<RequestLine> line =
      eol == std::string_view::npos ? std::nullopt : ParseRequestLine(head.substr(0, eol));
  if (!line) {
    return Reply("400 Bad Request", kText,
                 "malformed request line " + Quote(head.substr(0, eol)) + ": expected \"GET <path> HTTP/1.1\"\n",
                 false);
  }
  const bool head_method = line->method == "HEAD";  // whose answer has no body
  if (line->method != "GET") {
    return Reply("405 Method Not Allowed", kText,
                 "method " + Quote(line->method) + " not allowed: the metrics server answers GET only\n", head_method,
                 "Allow: GET\r\n");
  }
  if (std::string problem = HeaderProblem(head.substr(eol + 2)); !problem.empty()) {
    return Reply("400 Bad Request", kText, problem + "\n", false);
  }
  for (const Endpoint& endpoint : endpoints_) {
    if (endpoint.path != line->path) continue;
    std::string body;
    try {
      body = endpoint.render();
    } catch (const std::exception& e) {
      return Reply("500 Internal Server Error", kText, std::string("collecting metrics failed: ") + e.what() + "\n",
                   false);
    } catch (...) {
      return Reply("500 Internal Server Error", kText, "collecting metrics failed\n", false);
    }
    return Reply("200 OK", "text/plain; version=0.0.4; charset=utf-8", body, false);
  }
  return Reply("404 Not Found", kText, "404 page not found\n", false);
}

Exposer::Endpoint MetricsEndpoint(const Metrics& metrics, std::string path) {
  return {std::move(path), [&metrics] { return metrics.Render(); }};
}

}  // namespace praefect::metrics
