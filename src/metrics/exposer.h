#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status_or.h"
#include "metrics/metrics.h"

namespace praefect::metrics {

// A minimal HTTP/1.1 server for Prometheus scrapes: GET (or HEAD) of a
// configured path answers the text its renderer returns, as
// "text/plain; version=0.0.4"; other paths get 404, other methods 405. One
// connection at a time, each closed after one response and given at most
// kConnectionDeadline to send its request and take the answer, so a stuck
// client delays scrapes by that much at worst. Serves from its own thread
// from creation to destruction; the destructor stops it. Thread-safe.
class Exposer {
 public:
  // Returns the body of a scrape. Called from the exposer's thread.
  using Renderer = std::function<std::string()>;
  struct Endpoint {
    std::string path;  // "/metrics"
    Renderer render;
  };

  static constexpr std::chrono::seconds kConnectionDeadline{5};

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
  void Serve(int conn);
  std::string Respond(std::string_view request) const;

  const int listen_fd_;
  const int wake_fd_;  // eventfd: written by the destructor to stop Run()
  const int port_;
  const std::vector<Endpoint> endpoints_;
  std::thread thread_;  // last: starts once the members above are set
};

// An endpoint serving every series of `metrics` at `path`.
// REQUIRES: `metrics` outlives the Exposer given the endpoint.
Exposer::Endpoint MetricsEndpoint(const Metrics& metrics, std::string path = "/metrics");

}  // namespace praefect::metrics
