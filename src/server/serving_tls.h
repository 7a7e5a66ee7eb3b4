#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "common/status_or.h"
#include "config/config.h"
#include "http2/server.h"
#include "http2/tls_context.h"

// The certificate praefect serves on its TLS listeners (tls_listen_addr, the
// praefect-tls socket): checked when loaded (expired, not yet valid, key
// mismatch are refused naming the file), replaced whole on reload, so that
// new connections use the new one while those up keep theirs. Thread-safe.
namespace praefect::server {

class ServingTls {
 public:
  static StatusOr<std::unique_ptr<ServingTls>> Load(const config::Tls& tls);

  // Loads `tls` again (new files or renewed ones at the same paths). On
  // error the previous certificate stays and the error says why.
  [[nodiscard]] Status Reload(const config::Tls& tls);

  // Reloads when the files of `tls` changed since they were last loaded
  // (modification time, size or inode): a certificate renewed in place is
  // served without a reload, as grpc's listener did. Returns what
  // happened: nullopt when nothing changed, else the reload's outcome (a
  // pair caught half-written fails, keeps the old one, and is tried again
  // on the next call).
  std::optional<Status> ReloadIfChanged(const config::Tls& tls);

  // Makes the TLS layer of each accepted connection, with the certificate
  // loaded last. REQUIRES: this object outlives the listener.
  http2::Server::MakeSecure ForListener();

 private:
  explicit ServingTls(std::shared_ptr<const http2::TlsContext> context) : context_(std::move(context)) {}
  static std::string Stamp(const config::Tls& tls);
  std::atomic<std::shared_ptr<const http2::TlsContext>> context_;
  std::string loaded_stamp_;  // Stamp() of the files loaded last; used by the signal thread only
  std::string failed_stamp_;  // Stamp() of the files that failed last
};

// A TLS context for praefect's connections to tls:// nodes: the system's CA
// store (SSL_CERT_FILE and SSL_CERT_DIR honoured), as Gitaly's client uses.
StatusOr<std::shared_ptr<const http2::TlsContext>> NodeTlsContext();

}  // namespace praefect::server
