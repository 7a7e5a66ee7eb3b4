#pragma once

#include <atomic>
#include <chrono>
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
// new connections use the new one while those up keep theirs. The key may
// come from the systemd credential tls-key (config::Tls::key_credential).
// Thread-safe.
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

  // The expiry (notAfter) of the certificate served now. Thread-safe.
  std::chrono::system_clock::time_point NotAfter() const { return not_after_.load(); }

  // Makes the TLS layer of each accepted connection, with the certificate
  // loaded last. REQUIRES: this object outlives the listener.
  http2::Server::MakeSecure ForListener();

 private:
  struct Loaded {
    std::shared_ptr<const http2::TlsContext> context;
    std::chrono::system_clock::time_point not_after;
  };
  // The files of `tls` checked at `now` (CheckCertificateFiles) and loaded.
  static StatusOr<Loaded> Build(const config::Tls& tls, std::chrono::system_clock::time_point now);

  explicit ServingTls(std::shared_ptr<const http2::TlsContext> context) : context_(std::move(context)) {}
  static std::string Stamp(const config::Tls& tls);
  std::atomic<std::shared_ptr<const http2::TlsContext>> context_;
  std::atomic<std::chrono::system_clock::time_point> not_after_{};
  std::string loaded_stamp_;  // Stamp() of the files loaded last; used by the signal thread only
  std::string failed_stamp_;  // Stamp() of the files that failed last
};

// The certificate and key files of `tls` for the http2 checks, the key named
// as its source (the systemd credential tls-key, key_path or key).
http2::TlsFiles ServingTlsFiles(const config::Tls& tls);

// The checks Load makes, without loading (`configuration validate`): OK, or
// why `tls` would be refused at `now`. `with_key` false: the certificate's
// dates only (the key is out of reach: ExecReload= has no credentials).
[[nodiscard]] Status CheckServingCertificate(const config::Tls& tls, bool with_key,
                                             std::chrono::system_clock::time_point now);

// A TLS context for praefect's connections to tls:// nodes: the system's CA
// store (SSL_CERT_FILE and SSL_CERT_DIR honoured), as Gitaly's client uses.
StatusOr<std::shared_ptr<const http2::TlsContext>> NodeTlsContext();

}  // namespace praefect::server
