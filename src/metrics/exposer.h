#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status_or.h"
#include "metrics/metrics.h"

namespace praefect::metrics {

// A minimal HTTP/1.1 server for Prometheus scrapes: a GET of a configured
// path (a query string is ignored) answers the text its renderer returns, as
// "text/plain; version=0.0.4". It refuses everything else, each connection
// closed after one response:
//   - any other method (HEAD too): 405 with "Allow: GET";
//   - an unknown path: 404;
//   - a request line that is not "METHOD target HTTP/1.x": 400;
//   - a request head over kMaxRequestHeader: 431;
//   - a request with a body (Content-Length > 0, Transfer-Encoding): 400.
//
// One thread accepts; each connection is served on a thread of its own, at
// most kMaxConnections at once, so a slow client or a slow renderer holds only
// its own connection. A connection beyond that is answered at once with 503
// and closed. A client has kConnectionDeadline to send its request head and,
// once the answer is ready, kSendDeadline to take it; then it is closed (after
// up to kLingerTime waiting for the client to close first, so that the
// answer is not lost to a reset). A renderer is not bounded: it must bound its
// own work (a database query, say) below Prometheus' scrape timeout.
//
// The destructor stops accepting, wakes every connection waiting on its client
// and joins every thread: it returns once the renders in progress are done.
// Thread-safe.
class Exposer {
 public:
  // Returns the body of a scrape. Called from the connection threads,
  // possibly from several at once: it must be thread-safe. An exception it
  // throws becomes a 500 answer.
  using Renderer = std::function<std::string()>;
  struct Endpoint {
    std::string path;  // "/metrics"
    Renderer render;
  };

  static constexpr std::size_t kMaxConnections = 16;
  static constexpr std::size_t kMaxRequestHeader = 16 * 1024;    // request line and headers
  static constexpr std::chrono::seconds kConnectionDeadline{5};  // from accept to the end of the head
  static constexpr std::chrono::seconds kSendDeadline{5};        // from the answer being ready
  static constexpr std::chrono::seconds kLingerTime{1};

  // Listens on `address`: "host:port", "[v6]:port" or ":port" (every
  // interface), Praefect's prometheus_listen_addr; port 0 picks a free port.
  // Errors (malformed address, port in use, ...) say what to change.
  static StatusOr<std::unique_ptr<Exposer>> Listen(std::string_view address, std::vector<Endpoint> endpoints);

  // Serves on `fd`, an already listening stream socket (systemd socket
  // activation). Takes ownership of `fd`, also on error.
  static StatusOr<std::unique_ptr<Exposer>> Adopt(int fd, std::vector<Endpoint> endpoints);

  ~Exposer();
  Exposer(const Exposer&) = delete;
  Exposer& operator=(const Exposer&) = delete;

  // The bound TCP port (the chosen one after port 0); 0 for a non-inet socket.
  int port() const { return port_; }

 private:
  Exposer(int listen_fd, int wake_fd, std::vector<Endpoint> endpoints);
  void Run();
  // Serves one connection and closes it. Runs on the connection's thread.
  void Serve(int conn) const;
  // The answer to a request head (or to the start of one whose request line
  // is complete and malformed).
  std::string Respond(std::string_view head) const;

  const int listen_fd_;
  const int wake_fd_;  // eventfd: written by the destructor to stop every thread
  const int port_;
  const std::vector<Endpoint> endpoints_;
  std::thread thread_;  // last: starts once the members above are set
};

// An endpoint serving every series of `metrics` at `path`.
// REQUIRES: `metrics` outlives the Exposer given the endpoint.
Exposer::Endpoint MetricsEndpoint(const Metrics& metrics, std::string path = "/metrics");

}  // namespace praefect::metrics
