#include "http2/certificate.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "test_certificates.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::http2::CertificateNotAfter;
using praefect::http2::CheckCertificateFiles;
using praefect::http2::TlsFiles;
using praefect::http2::testing::TestPki;
using praefect::http2::testing::Utc;

namespace {

TestPki* pki = nullptr;

const auto kToday = Utc(2026, 12, 3);

// Fails unless `st` is FAILED_PRECONDITION with every one of `parts` in its message.
void ExpectRefused(const Status& st, std::initializer_list<std::string> parts) {
  expect_that(st.code() == StatusCode::kFailedPrecondition, "FAILED_PRECONDITION, got " + st.ToString());
  for (const std::string& part : parts) {
    expect_that(st.message().find(part) != std::string::npos, "\"" + part + "\" in: " + st.message());
  }
}

std::string Quoted(const std::string& path) { return "\"" + path + "\""; }

void test_valid_files_pass(void**) {
  assert_status_ok(CheckCertificateFiles(pki->server(), kToday));
  // The key inline, as from a systemd credential.
  TlsFiles inline_key = pki->server();
  inline_key.key_path.clear();
  inline_key.key = pki->server_key_pem();
  assert_status_ok(CheckCertificateFiles(inline_key, kToday));
}

void test_expired_certificate_is_refused_with_its_date(void**) {
  TlsFiles files = pki->Files("expired.pem", "server.key");
  ExpectRefused(CheckCertificateFiles(files, kToday),
                {"tls.certificate_path " + Quoted(files.certificate_path),
                 "the certificate (CN=praefect.test,O=praefect tests) expired on 2026-11-30 12:00:00 UTC", "renewed"});
  // The same file an hour before it expires.
  assert_status_ok(CheckCertificateFiles(files, Utc(2026, 11, 30, 11)));
}

void test_certificate_not_yet_valid_is_refused(void**) {
  TlsFiles files = pki->Files("future.pem", "server.key");
  ExpectRefused(CheckCertificateFiles(files, kToday),
                {Quoted(files.certificate_path), "is not valid before 2030-01-01 00:00:00 UTC",
                 "it is 2026-12-03 00:00:00 UTC here", "clock"});
  assert_status_ok(CheckCertificateFiles(files, Utc(2030, 1, 2)));
}

void test_expired_certificate_in_the_chain_is_named(void**) {
  using namespace praefect::http2::testing;
  praefect::http2::EvpPkeyPtr root_key = NewKey(), intermediate_key = NewKey(), leaf_key = NewKey();
  praefect::http2::X509Ptr root =
      Issue({.common_name = "root", .not_before = Utc(2020, 1, 1), .not_after = Utc(2099, 1, 1), .is_ca = true},
            root_key.get(), nullptr, root_key.get());
  praefect::http2::X509Ptr intermediate = Issue(
      {.common_name = "old intermediate", .not_before = Utc(2020, 1, 1), .not_after = Utc(2025, 6, 1), .is_ca = true},
      intermediate_key.get(), root.get(), root_key.get());
  praefect::http2::X509Ptr leaf =
      Issue({.common_name = "leaf", .not_before = Utc(2020, 1, 1), .not_after = Utc(2099, 1, 1)}, leaf_key.get(),
            intermediate.get(), intermediate_key.get());
  TlsFiles files;
  files.certificate_path = pki->Write("chain.pem", ToPem(leaf.get()) + ToPem(intermediate.get()));
  files.key = ToPem(leaf_key.get());
  ExpectRefused(
      CheckCertificateFiles(files, kToday),
      {"certificate 2 of the chain (CN=old intermediate,O=praefect tests) expired on 2025-06-01 00:00:00 UTC"});
  assert_status_ok(CheckCertificateFiles(files, Utc(2025, 1, 1)));
}

void test_key_that_does_not_match_is_refused(void**) {
  TlsFiles files = pki->Files("server.pem", "other.key");
  ExpectRefused(CheckCertificateFiles(files, kToday),
                {"tls.key_path " + Quoted(files.key_path), "does not match the certificate (CN=praefect.test",
                 Quoted(files.certificate_path), "configure the key the certificate was issued for"});
  // Inline: named as tls.key, and its text never shown.
  files.key_path.clear();
  files.key = praefect::http2::testing::ToPem(praefect::http2::testing::NewKey().get());
  Status st = CheckCertificateFiles(files, kToday);
  ExpectRefused(st, {"tls.key: the key does not match"});
  expect_that(st.message().find("PRIVATE KEY") == std::string::npos, "no key text in: " + st.message());
}

void test_unreadable_files_are_named(void**) {
  TlsFiles files = pki->server();
  files.certificate_path = pki->Path("missing.pem");
  ExpectRefused(CheckCertificateFiles(files, kToday), {"tls.certificate_path " + Quoted(files.certificate_path),
                                                       "No such file or directory", "praefect's user may read it"});
  files.certificate_path = pki->dir();
  ExpectRefused(CheckCertificateFiles(files, kToday), {Quoted(pki->dir()), "Is a directory"});
  files = pki->server();
  files.key_path = pki->Path("missing.key");
  ExpectRefused(CheckCertificateFiles(files, kToday), {"tls.key_path " + Quoted(files.key_path), "No such file"});
  files.key_path.clear();
  ExpectRefused(CheckCertificateFiles(files, kToday), {"neither tls.key_path nor tls.key is set"});
  files.certificate_path.clear();
  ExpectRefused(CheckCertificateFiles(files, kToday), {"tls.certificate_path is empty"});
  if (geteuid() != 0) {  // root reads whatever the mode says
    std::string locked = pki->Write("locked.pem", "x");
    chmod(locked.c_str(), 0);
    files = pki->server();
    files.certificate_path = locked;
    ExpectRefused(CheckCertificateFiles(files, kToday), {Quoted(locked), "Permission denied"});
  }
}

void test_files_that_are_not_pem_are_refused_with_the_reason(void**) {
  TlsFiles files = pki->server();
  files.certificate_path = pki->Write("text.pem", "hello\n");
  ExpectRefused(CheckCertificateFiles(files, kToday), {Quoted(files.certificate_path), "not PEM", "-inform DER"});
  files.certificate_path = pki->Write("empty.pem", "");
  ExpectRefused(CheckCertificateFiles(files, kToday), {"the file is empty"});
  // The certificate's setting holding the key: swapped settings.
  files.certificate_path = pki->Path("server.key");
  ExpectRefused(CheckCertificateFiles(files, kToday), {"holds a private key but no certificate", "swapped"});
  // Cut in the middle of its base64.
  std::string pem;
  {
    std::ifstream in(pki->Path("server.pem"));
    pem.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  files.certificate_path = pki->Write("cut.pem", pem.substr(0, pem.size() / 2));
  ExpectRefused(CheckCertificateFiles(files, kToday), {"certificate 1 of the file cannot be read", "truncated"});
  // A good certificate followed by a damaged one.
  files.certificate_path = pki->Write("second_cut.pem", pem + pem.substr(0, pem.size() / 2));
  ExpectRefused(CheckCertificateFiles(files, kToday), {"certificate 2 of the file cannot be read"});

  files = pki->server();
  files.key_path = pki->Write("text.key", "not a key");
  ExpectRefused(CheckCertificateFiles(files, kToday), {"tls.key_path " + Quoted(files.key_path), "not PEM"});
  files.key_path = pki->Path("server.pem");
  ExpectRefused(CheckCertificateFiles(files, kToday), {"holds no private key but a certificate", "swapped"});
}

void test_encrypted_key_is_refused(void**) {
  praefect::http2::EvpPkeyPtr key = praefect::http2::testing::NewKey();
  BIO* bio = BIO_new(BIO_s_mem());
  const char kPass[] = "secret";
  assert_int_equal(
      PEM_write_bio_PrivateKey(bio, key.get(), EVP_aes_128_cbc(), nullptr, 0, nullptr, const_cast<char*>(kPass)), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  TlsFiles files = pki->server();
  files.key_path = pki->Write("encrypted.key", pem);
  ExpectRefused(CheckCertificateFiles(files, kToday), {"the key is encrypted", "openssl pkey"});
}

void test_messages_use_the_configured_name(void**) {
  TlsFiles files = pki->Files("expired.pem", "server.key");
  files.config_name = "backend_tls";
  ExpectRefused(CheckCertificateFiles(files, kToday), {"backend_tls.certificate_path \"", "expired on"});
}

void test_not_after_is_the_leaf_expiry(void**) {
  auto server = CertificateNotAfter(pki->server());
  assert_status_ok(server.status());
  expect_that(*server == Utc(2099, 12, 31), "2099-12-31");
  auto expired = CertificateNotAfter(pki->Files("expired.pem", "missing.key"));  // the key is not read
  assert_status_ok(expired.status());
  expect_that(*expired == Utc(2026, 11, 30, 12), "2026-11-30 12:00");
  TlsFiles missing = pki->server();
  missing.certificate_path = pki->Path("missing.pem");
  auto error = CertificateNotAfter(missing);
  ExpectRefused(error.status(), {Quoted(missing.certificate_path), "No such file"});
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
      cmocka_unit_test(test_valid_files_pass),
      cmocka_unit_test(test_expired_certificate_is_refused_with_its_date),
      cmocka_unit_test(test_certificate_not_yet_valid_is_refused),
      cmocka_unit_test(test_expired_certificate_in_the_chain_is_named),
      cmocka_unit_test(test_key_that_does_not_match_is_refused),
      cmocka_unit_test(test_unreadable_files_are_named),
      cmocka_unit_test(test_files_that_are_not_pem_are_refused_with_the_reason),
      cmocka_unit_test(test_encrypted_key_is_refused),
      cmocka_unit_test(test_messages_use_the_configured_name),
      cmocka_unit_test(test_not_after_is_the_leaf_expiry),
  };
  return cmocka_run_group_tests(tests, Setup, Teardown);
}
