#pragma once

// Internal to src/systemd/: the OpenSSL server context of the TLS bridge.

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "common/status_or.h"

namespace praefect::systemd {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// [tls] of the configuration, as tls_listen_addr uses it.
struct TlsFiles {
  std::string certificate_path;  // PEM, the certificate then its chain
  std::string key_path;          // PEM key, when `key` is empty
  std::string key;               // PEM key inline
};

// A server context for gRPC: TLS 1.2 or newer, the certificate and key of
// `files`, ALPN "h2" selected when the client offers it (gRPC clients refuse
// a server that does not select it). Errors name the file and what to do.
StatusOr<SslCtxPtr> NewServerContext(const TlsFiles& files);

}  // namespace praefect::systemd
