#pragma once

// Accepting connections on listening sockets praefect did not bind itself
// (systemd socket activation): grpc++ 1.51 cannot adopt a listening socket,
// only accepted connections (grpc::AddInsecureChannelFromFd).

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "common/status_or.h"

namespace praefect::systemd {

// Takes ownership of an accepted connection's descriptor.
using HandOff = std::function<void(int fd)>;

// Makes an accepted connection what grpc's posix endpoint expects: non-blocking
// (grpc reads until EAGAIN and then polls; a blocking descriptor would stall
// one of its poller threads), close-on-exec, and for TCP without Nagle's delay
// (grpc sets TCP_NODELAY on the connections it accepts itself; a fd handed to
// it keeps whatever it has). Returns false when the descriptor cannot be set up.
[[nodiscard]] bool PrepareAcceptedFd(int fd);

// A thread that accepts on one or more listening stream sockets and hands
// every connection, prepared as above, to `hand_off`. Thread-safe.
class FdAcceptor {
 public:
  // Takes ownership of `listen_fds`, also on error. `hand_off` is called from
  // the acceptor's thread.
  static StatusOr<std::unique_ptr<FdAcceptor>> Start(std::vector<int> listen_fds, HandOff hand_off);

  ~FdAcceptor();  // Stop()
  FdAcceptor(const FdAcceptor&) = delete;
  FdAcceptor& operator=(const FdAcceptor&) = delete;

  // Stops accepting and closes the listening sockets (systemd keeps its own
  // copies). `hand_off` is not called once Stop returns. Idempotent.
  void Stop();

 private:
  FdAcceptor(std::vector<int> listen_fds, int wake_fd, HandOff hand_off);
  void Run();

  const std::vector<int> listen_fds_;
  const int wake_fd_;  // eventfd written by Stop()
  const HandOff hand_off_;
  std::atomic<bool> stopped_{false};
  std::thread thread_;  // last: starts once the members above are set
};

}  // namespace praefect::systemd
