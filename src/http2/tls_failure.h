#pragma once

// Internal to src/http2/: what a failed TLS connection means, in words an
// operator can act on.

#include <string>
#include <string_view>

namespace praefect::http2 {

// What OpenSSL said about a failure, gathered by TlsFilter.
struct TlsFailureFacts {
  bool server = false;                // this side of the connection is the server
  unsigned long error = 0;            // the deciding OpenSSL error code (ERR_get_error), 0 if none
  std::string openssl = {};           // all of OpenSSL's reasons, "; "-joined
  long verify_result = 0;             // X509_V_OK (0) unless praefect refused the peer's certificate
  std::string_view server_name = {};  // client side: the name the server's certificate must hold
  std::string_view trust = {};        // client side: the CAs praefect trusts (TlsContext::trust)
};

// What happened and what to check, without the "TLS handshake with X
// failed: " prefix: "the client does not trust praefect's certificate (alert
// 48 unknown_ca): ...".
std::string ExplainTlsFailure(const TlsFailureFacts& facts);

// RFC 8446's name of TLS alert `code` ("unknown_ca"); "unassigned" for a code
// it does not name.
std::string_view TlsAlertName(int code);

}  // namespace praefect::http2
