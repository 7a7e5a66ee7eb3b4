#pragma once

#include <memory>
#include <string>

#include "common/status_or.h"
#include "http2/certificate.h"

// OpenSSL's SSL_CTX, declared here so that users of this header need no
// OpenSSL headers.
struct ssl_ctx_st;

namespace praefect::http2 {

// How praefect checks the servers it connects to (nodes at tls://host:port).
struct ClientOptions {
  // PEM file of the CAs trusted for servers' certificates. Empty: the
  // system's trust store, or the files named by the SSL_CERT_FILE and
  // SSL_CERT_DIR environment variables when set (as Gitaly does).
  std::string ca_file;
  // A client certificate and key to present, for servers that ask for one;
  // none when certificate_path is empty. config_name names it in messages.
  TlsFiles client_certificate{.certificate_path = "", .key_path = "", .key = "", .config_name = "client_certificate"};
};

// The settings shared by the TLS connections of one side: TLS 1.2 or newer,
// ALPN "h2", renegotiation refused, a peer's missing close_notify treated as
// an end of stream (HTTP/2 frames its own messages). A server context holds
// the certificate and key it serves and selects "h2" when the client offers
// it (without ALPN otherwise); a client context verifies the server's
// certificate and host name and offers "h2".
//
// Immutable once created. Thread-safe: shared (std::shared_ptr) by the
// TlsFilters of several event loops. A reload creates a new context; filters
// keep the one they were created with.
class TlsContext {
 public:
  // Errors (FAILED_PRECONDITION) name the setting and the file and say what
  // to do. Expiry is not checked here (no clock): see CheckCertificateFiles.
  static StatusOr<std::shared_ptr<const TlsContext>> Server(const TlsFiles& files);
  static StatusOr<std::shared_ptr<const TlsContext>> Client(const ClientOptions& options);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool is_server() const { return server_; }

  // Client contexts: which CAs are trusted, for messages ("the CA file
  // \"/etc/praefect/ca.pem\""). Empty for a server context.
  const std::string& trust() const { return trust_; }

 private:
  friend class TlsFilter;

  // Takes ownership of `ctx`.
  TlsContext(ssl_ctx_st* ctx, bool server, std::string trust);

  ssl_ctx_st* const ctx_;
  const bool server_;
  const std::string trust_;
};

}  // namespace praefect::http2
