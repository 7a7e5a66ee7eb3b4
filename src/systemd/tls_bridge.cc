#include "systemd/tls_bridge.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "systemd/bridge_loop.h"

namespace praefect::systemd {

StatusOr<std::unique_ptr<TlsBridge>> TlsBridge::Start(int listen_fd, SslCtxPtr ctx, HandOff hand_off,
                                                      Options options) {
  int flags = fcntl(listen_fd, F_GETFL);
  if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    Status st = Internal("TLS socket passed by systemd: cannot make it non-blocking: " +
                         std::string(std::strerror(errno)));
    close(listen_fd);
    return st;
  }
  std::unique_ptr<TlsBridge> bridge(new TlsBridge(listen_fd, std::move(ctx)));
  for (int i = 0; i < std::max(1, options.loops); ++i) {
    auto loop = BridgeLoop::Create(listen_fd, &bridge->current_, hand_off, options);
    if (!loop.ok()) return loop.status();  // ~TlsBridge stops the loops made so far
    bridge->loops_.push_back(std::move(*loop));
  }
  return bridge;
}

TlsBridge::TlsBridge(int listen_fd, SslCtxPtr ctx) : listen_fd_(listen_fd) {
  current_.store(ctx.get(), std::memory_order_release);
  contexts_.push_back(std::move(ctx));
}

void TlsBridge::ReplaceContext(SslCtxPtr ctx) {
  std::lock_guard lock(mu_);
  current_.store(ctx.get(), std::memory_order_release);
  contexts_.push_back(std::move(ctx));
}

TlsBridge::~TlsBridge() {
  StopAccepting();
  loops_.clear();
}

void TlsBridge::StopAccepting() {
  std::lock_guard lock(mu_);
  if (!accepting_) return;
  accepting_ = false;
  for (auto& loop : loops_) loop->StopAccepting();
  close(listen_fd_);
}

}  // namespace praefect::systemd
