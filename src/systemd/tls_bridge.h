#pragma once

// TLS termination for a listening socket passed by systemd: grpc++ 1.51 can
// only take accepted plaintext connections from a descriptor, so praefect
// completes the TLS handshake itself (OpenSSL, ALPN "h2") and bridges each
// decrypted stream to grpc through a socketpair.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common/status_or.h"
#include "systemd/fd_acceptor.h"
#include "systemd/tls_context.h"

namespace praefect::systemd {

class BridgeLoop;

struct TlsBridgeOptions {
  // Event-loop threads; each drives the connections it accepted.
  int loops = 2;
  // Queued bytes per connection and direction.
  size_t buffer_bytes = 64 * 1024;
  // A client that has not completed its handshake by then is dropped, so
  // silent connections cannot pile up.
  std::chrono::milliseconds handshake_timeout{10000};
};

// A few event-loop threads, each accepting on the shared listening socket
// (EPOLLEXCLUSIVE wakes one of them per connection) and driving its own
// connections with non-blocking OpenSSL calls: no thread per connection,
// and at most 2 * buffer_bytes of queued bytes per connection (plus
// OpenSSL's record buffers, released while idle). Thread-safe.
class TlsBridge {
 public:
  using Options = TlsBridgeOptions;

  // Takes ownership of `listen_fd` (a listening stream socket), also on
  // error. `hand_off` takes the grpc side of each bridged connection (a
  // non-blocking, close-on-exec unix stream socket) and is called from the
  // loop threads.
  static StatusOr<std::unique_ptr<TlsBridge>> Start(int listen_fd, SslCtxPtr ctx, HandOff hand_off,
                                                    Options options);
  static StatusOr<std::unique_ptr<TlsBridge>> Start(int listen_fd, SslCtxPtr ctx, HandOff hand_off) {
    return Start(listen_fd, std::move(ctx), std::move(hand_off), Options());
  }

  // Closes every connection and stops the loops.
  ~TlsBridge();
  TlsBridge(const TlsBridge&) = delete;
  TlsBridge& operator=(const TlsBridge&) = delete;

  // Stops accepting, drops the connections still in their handshake and
  // closes the listening socket; bridged connections go on until either side
  // closes them. `hand_off` is not called once this returns. Idempotent.
  void StopAccepting();

  // New connections use `ctx` from now on (a reloaded certificate and key);
  // connections already up keep theirs. Thread-safe.
  void ReplaceContext(SslCtxPtr ctx);

 private:
  TlsBridge(int listen_fd, SslCtxPtr ctx);

  const int listen_fd_;
  // Every context ever used, kept until the bridge goes: a loop thread may
  // have loaded the previous pointer just before a swap (SSL_new takes its
  // own reference only once it runs). Reloads are rare; each costs a few KiB.
  std::vector<SslCtxPtr> contexts_;  // GUARDED_BY(mu_)
  std::atomic<SSL_CTX*> current_{nullptr};
  std::mutex mu_;
  bool accepting_ = true;  // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<BridgeLoop>> loops_;
};

}  // namespace praefect::systemd
