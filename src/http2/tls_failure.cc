#include "http2/tls_failure.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

namespace praefect::http2 {
namespace {

struct Sides {
  std::string peer;  // "the client" / "the server"
  std::string ours;  // the certificate praefect presents
};

Sides SidesOf(const TlsFailureFacts& f) {
  if (f.server) return {"the client", "praefect's certificate"};
  return {"the server", "praefect's client certificate"};
}

std::string AlertText(int alert) { return "alert " + std::to_string(alert) + " " + std::string(TlsAlertName(alert)); }

// The peer sent a fatal alert: it refused something of ours.
std::string ExplainAlert(const TlsFailureFacts& f, int alert) {
  const Sides s = SidesOf(f);
  const std::string why = " (" + AlertText(alert) + ")";
  switch (alert) {
    case SSL_AD_UNKNOWN_CA:
      return s.peer + " does not trust " + s.ours + why + ": give " + s.peer +
             " the CA certificate that issued it, or use a certificate from a CA " + s.peer + " trusts";
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
      return s.peer + " rejected " + s.ours + why + ": check that the name " + s.peer +
             " connects to is in the certificate's subjectAltName, that the certificate file holds the whole chain, "
             "and that its key usage allows TLS " +
             (f.server ? "server" : "client") + " authentication";
    case SSL_AD_CERTIFICATE_EXPIRED:
      return s.peer + " says " + s.ours + " has expired" + why + ": install a renewed certificate (and check " +
             s.peer + "'s clock)";
    case SSL_AD_CERTIFICATE_REVOKED:
      return s.peer + " says " + s.ours + " was revoked" + why + ": install a new certificate";
    case SSL_AD_CERTIFICATE_REQUIRED:
      return s.peer + " requires a client certificate" + why +
             ": configure one for praefect's connections to it, or do not require one there";
    case SSL_AD_HANDSHAKE_FAILURE:
    case SSL_AD_PROTOCOL_VERSION:
    case SSL_AD_INSUFFICIENT_SECURITY:
      return s.peer + " found no TLS version or cipher suite it shares with praefect" + why +
             ": praefect speaks TLS 1.2 and 1.3 with OpenSSL's default cipher suites; check " + s.peer +
             "'s TLS settings";
    case SSL_AD_NO_APPLICATION_PROTOCOL:
      return s.peer + " requires an application protocol (ALPN) that praefect does not offer" + why +
             ": praefect speaks only h2 (gRPC over HTTP/2)";
    case SSL_AD_UNRECOGNIZED_NAME:
      return s.peer + " does not serve the name \"" + std::string(f.server_name) + "\"" + why +
             ": check the host name in the address praefect connects to";
    case SSL_AD_ACCESS_DENIED:
      return s.peer + " denied access" + why + ": check " + s.peer + "'s access rules for praefect";
    case SSL_AD_INTERNAL_ERROR: return s.peer + " had an internal error" + why + ": look in " + s.peer + "'s logs";
    case SSL_AD_USER_CANCELLED: return s.peer + " cancelled the handshake" + why;
    default:
      return s.peer + " reported a TLS protocol error" + why +
             ": the data was damaged on the way, or the TLS implementations disagree; if it repeats, capture "
             "the traffic and report it";
  }
}

// praefect (the client side) refused the server's certificate.
std::string ExplainVerifyFailure(const TlsFailureFacts& f) {
  const std::string x509 = " (X509: " + std::string(X509_verify_cert_error_string(f.verify_result)) + ")";
  const std::string name(f.server_name);
  switch (f.verify_result) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return "the server's certificate is not valid for \"" + name + "\"" + x509 +
             ": connect with a name (or IP address) listed in the certificate's subjectAltName, or reissue the "
             "certificate with \"" +
             name + "\" in it";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
      return "praefect does not trust the server's certificate" + x509 + ": praefect trusts the CAs of " +
             std::string(f.trust) +
             "; add the CA that issued the server's certificate there, or have the server send its whole chain";
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return "the server's certificate has expired" + x509 +
             ": renew it on the server; if it has not, check this machine's clock";
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "the server's certificate is not valid yet" + x509 +
             ": check the clocks of this machine and of the server";
    default: return "praefect refused the server's certificate" + x509 + ": check the certificate the server presents";
  }
}

}  // namespace

std::string_view TlsAlertName(int code) {
  switch (code) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 21: return "decryption_failed";
    case 22: return "record_overflow";
    case 30: return "decompression_failure";
    case 40: return "handshake_failure";
    case 41: return "no_certificate";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 60: return "export_restriction";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 100: return "no_renegotiation";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 111: return "certificate_unobtainable";
    case 112: return "unrecognized_name";
    case 113: return "bad_certificate_status_response";
    case 114: return "bad_certificate_hash_value";
    case 115: return "unknown_psk_identity";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
  }
  return "unassigned";
}

std::string ExplainTlsFailure(const TlsFailureFacts& f) {
  const Sides s = SidesOf(f);
  const int reason = f.error != 0 && ERR_GET_LIB(f.error) == ERR_LIB_SSL ? ERR_GET_REASON(f.error) : 0;
  const std::string openssl = " (OpenSSL: " + (f.openssl.empty() ? std::string("no reason given") : f.openssl) + ")";
  // OpenSSL reports an alert received from the peer as reason 1000 + alert.
  if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
    return ExplainAlert(f, reason - SSL_AD_REASON_OFFSET);
  }
  switch (reason) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      if (!f.server) return ExplainVerifyFailure(f);
      break;
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_BAD_PACKET_LENGTH:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_BAD_RECORD_TYPE:
      return "what " + s.peer + " sent is not TLS" + openssl +
             (f.server ? ": is the client speaking plaintext (a tcp:// address, or http://) to praefect's TLS port?"
                       : ": does the server serve TLS on this port? Use a tcp:// address for a plaintext server");
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_UNSUPPORTED_SSL_VERSION:
      return s.peer + " offers only TLS versions older than 1.2, which praefect refuses" + openssl + ": enable TLS " +
             "1.2 or 1.3 on " + s.peer;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
      return "praefect and " + s.peer + " have no cipher suite or signature algorithm in common" + openssl +
             ": praefect uses OpenSSL's defaults for TLS 1.2 and 1.3; check " + s.peer + "'s TLS settings";
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
      return "a TLS record from " + s.peer + " failed its integrity check" + openssl +
             ": the data was damaged on the way (a faulty middlebox or network) or " + s.peer +
             " is not speaking TLS correctly; the connection cannot go on";
    case SSL_R_NO_APPLICATION_PROTOCOL:
      return s.peer + " selected an application protocol (ALPN) praefect did not offer" + openssl +
             ": praefect speaks only h2";
    default: break;
  }
  return "TLS failed" + openssl + ": " + s.peer + " broke the TLS protocol or the data was damaged on the way; check " +
         s.peer + "'s TLS settings, and if it repeats, capture the traffic";
}

}  // namespace praefect::http2
