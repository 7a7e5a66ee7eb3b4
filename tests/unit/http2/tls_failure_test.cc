#include "http2/tls_failure.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <string>
#include <vector>

#include "test_support.h"

using praefect::http2::ExplainTlsFailure;
using praefect::http2::TlsAlertName;
using praefect::http2::TlsFailureFacts;

namespace {

// An error code as OpenSSL reports a fatal alert received from the peer.
unsigned long AlertReceived(int alert) { return ERR_PACK(ERR_LIB_SSL, 0, SSL_AD_REASON_OFFSET + alert); }
unsigned long SslReason(int reason) { return ERR_PACK(ERR_LIB_SSL, 0, reason); }

struct Case {
  const char* name;
  TlsFailureFacts facts;
  std::vector<std::string> expected;
};

// The failures the handshake tests of tls_filter_test cannot provoke with
// OpenSSL on both ends; each message says what happened and what to check.
void test_explanations(void**) {
  const Case cases[] = {
      {"client certificate required",
       {.server = false, .error = AlertReceived(116), .server_name = "gitaly-1"},
       {"the server requires a client certificate (alert 116 certificate_required)", "configure one"}},
      {"no shared protocol, as a client",
       {.server = false, .error = AlertReceived(SSL_AD_PROTOCOL_VERSION)},
       {"the server found no TLS version or cipher suite it shares with praefect (alert 70 protocol_version)",
        "TLS 1.2 and 1.3"}},
      {"ALPN refused",
       {.server = true, .error = AlertReceived(SSL_AD_NO_APPLICATION_PROTOCOL)},
       {"the client requires an application protocol (ALPN) that praefect does not offer", "only h2"}},
      {"SNI refused",
       {.server = false, .error = AlertReceived(SSL_AD_UNRECOGNIZED_NAME), .server_name = "gitaly-1.internal"},
       {"the server does not serve the name \"gitaly-1.internal\" (alert 112 unrecognized_name)"}},
      {"revoked", {.server = true, .error = AlertReceived(44)}, {"the client says praefect's certificate was revoked"}},
      {"unknown CA, as a client",
       {.server = false, .error = AlertReceived(48)},
       {"the server does not trust praefect's client certificate (alert 48 unknown_ca)"}},
      {"internal error", {.server = true, .error = AlertReceived(80)}, {"look in the client's logs"}},
      {"unassigned alert", {.server = true, .error = AlertReceived(200)}, {"(alert 200 unassigned)"}},
      {"no shared cipher",
       {.server = true, .error = SslReason(SSL_R_NO_SHARED_CIPHER), .openssl = "no shared cipher"},
       {"no cipher suite or signature algorithm in common", "(OpenSSL: no shared cipher)"}},
      {"server certificate not valid yet",
       {.server = false,
        .error = SslReason(SSL_R_CERTIFICATE_VERIFY_FAILED),
        .verify_result = X509_V_ERR_CERT_NOT_YET_VALID},
       {"the server's certificate is not valid yet", "clocks"}},
      {"self-signed server certificate",
       {.server = false,
        .error = SslReason(SSL_R_CERTIFICATE_VERIFY_FAILED),
        .verify_result = X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
        .trust = "the CA file \"/etc/praefect/ca.pem\""},
       {"praefect does not trust the server's certificate (X509: self-signed certificate)",
        "the CA file \"/etc/praefect/ca.pem\""}},
      {"an error with no reason",
       {.server = true},
       {"TLS failed (OpenSSL: no reason given)", "check the client's TLS settings"}},
  };
  for (const Case& c : cases) {
    const std::string message = ExplainTlsFailure(c.facts);
    for (const std::string& part : c.expected) {
      expect_that(message.find(part) != std::string::npos, std::string(c.name) + ": \"" + part + "\" in: " + message);
    }
  }
}

void test_alert_names(void**) {
  assert_string_equal(std::string(TlsAlertName(48)).c_str(), "unknown_ca");
  assert_string_equal(std::string(TlsAlertName(120)).c_str(), "no_application_protocol");
  assert_string_equal(std::string(TlsAlertName(7)).c_str(), "unassigned");
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_explanations),
      cmocka_unit_test(test_alert_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
