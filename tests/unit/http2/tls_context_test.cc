#include "http2/tls_context.h"

#include <string>

#include "http2/tls_filter.h"
#include "test_certificates.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::http2::ClientOptions;
using praefect::http2::TlsContext;
using praefect::http2::TlsFiles;
using praefect::http2::TlsFilter;
using praefect::http2::testing::TestPki;

namespace {

TestPki* pki = nullptr;

void ExpectRefused(const Status& st, std::initializer_list<std::string> parts) {
  expect_that(st.code() == StatusCode::kFailedPrecondition, "FAILED_PRECONDITION, got " + st.ToString());
  for (const std::string& part : parts) {
    expect_that(st.message().find(part) != std::string::npos, "\"" + part + "\" in: " + st.message());
  }
}

std::string Quoted(const std::string& path) { return "\"" + path + "\""; }

// True when `client` completes a handshake with `server` (certificate name
// "praefect.test"), shuttling the bytes in memory.
bool Handshakes(std::shared_ptr<const TlsContext> server, std::shared_ptr<const TlsContext> client) {
  auto c = TlsFilter::ForClient(std::move(client), "praefect.test", "server");
  auto s = TlsFilter::ForServer(std::move(server), "client");
  for (int round = 0; round < 10; ++round) {
    std::string to_server, to_client;
    c->TakeCiphertext(&to_server);
    s->TakeCiphertext(&to_client);
    std::string plaintext;
    if (!s->ReceiveCiphertext(to_server).ok() || !s->ReadPlaintext(&plaintext).ok()) return false;
    if (!c->ReceiveCiphertext(to_client).ok() || !c->ReadPlaintext(&plaintext).ok()) return false;
  }
  return c->handshake_done() && s->handshake_done();
}

void test_server_context_from_files_and_inline_key(void**) {
  auto from_files = TlsContext::Server(pki->server());
  assert_status_ok(from_files.status());
  expect_that((*from_files)->is_server(), "a server context");
  TlsFiles inline_key = pki->server();
  inline_key.key_path = pki->Path("not-read.key");
  inline_key.key = pki->server_key_pem();  // wins over key_path, as in Gitaly
  auto from_inline = TlsContext::Server(inline_key);
  assert_status_ok(from_inline.status());

  ClientOptions options;
  options.ca_file = pki->Path("ca.pem");
  auto client = TlsContext::Client(options);
  assert_status_ok(client.status());
  expect_that(!(*client)->is_server(), "a client context");
  expect_that(Handshakes(*from_files, *client), "a handshake with the key from its file");
  expect_that(Handshakes(*from_inline, *client), "a handshake with the inline key");
}

void test_server_context_errors_name_the_file(void**) {
  TlsFiles files = pki->server();
  files.certificate_path = pki->Path("missing.pem");
  ExpectRefused(TlsContext::Server(files).status(),
                {"tls.certificate_path " + Quoted(files.certificate_path), "No such file or directory"});
  files = pki->Files("server.pem", "other.key");
  ExpectRefused(TlsContext::Server(files).status(), {"tls.key_path " + Quoted(files.key_path),
                                                     "does not match the certificate", Quoted(files.certificate_path)});
  files = pki->server();
  files.key_path = pki->Write("garbage.key", "garbage");
  ExpectRefused(TlsContext::Server(files).status(), {Quoted(files.key_path), "not PEM"});
  // Expiry is CheckCertificateFiles' business: the context loads it.
  assert_status_ok(TlsContext::Server(pki->Files("expired.pem", "server.key")).status());
}

void test_client_context_trust(void**) {
  ClientOptions system;
  auto from_system = TlsContext::Client(system);
  assert_status_ok(from_system.status());
  expect_that((*from_system)->trust().find("the system's trust store") == 0, (*from_system)->trust());

  ClientOptions own;
  own.ca_file = pki->Path("ca.pem");
  auto from_file = TlsContext::Client(own);
  assert_status_ok(from_file.status());
  expect_that((*from_file)->trust() == "the CA file " + Quoted(own.ca_file), (*from_file)->trust());

  own.ca_file = pki->Path("missing-ca.pem");
  ExpectRefused(TlsContext::Client(own).status(), {"CA file " + Quoted(own.ca_file), "No such file"});
  own.ca_file = pki->Path("server.key");
  ExpectRefused(TlsContext::Client(own).status(), {"CA file " + Quoted(own.ca_file), "no certificate"});
}

void test_client_certificate_is_optional_and_checked(void**) {
  ClientOptions options;
  options.ca_file = pki->Path("ca.pem");
  options.client_certificate = pki->Files("client.pem", "client.key");
  options.client_certificate.config_name = "node_tls";
  assert_status_ok(TlsContext::Client(options).status());
  options.client_certificate.key_path = pki->Path("server.key");
  ExpectRefused(TlsContext::Client(options).status(),
                {"node_tls.key_path " + Quoted(pki->Path("server.key")), "does not match"});
  options.client_certificate.config_name = ClientOptions().client_certificate.config_name;
  options.client_certificate.certificate_path = pki->Path("missing.pem");
  ExpectRefused(TlsContext::Client(options).status(), {"client_certificate.certificate_path \"", "No such file"});
}

int Setup(void**) {
  pki = new TestPki();
  return 0;
}

int Teardown(void**) {
  delete pki;
  return 0;
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_server_context_from_files_and_inline_key),
      cmocka_unit_test(test_server_context_errors_name_the_file),
      cmocka_unit_test(test_client_context_trust),
      cmocka_unit_test(test_client_certificate_is_optional_and_checked),
  };
  return cmocka_run_group_tests(tests, Setup, Teardown);
}
