#include "test_certificates.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace praefect::http2::testing {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "test certificates: %s: %s\n", what.c_str(), DrainOpenSslErrors().c_str());
  std::abort();
}

void AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr || X509_add_ext(cert, ext, -1) != 1) Die("extension " + value);
  X509_EXTENSION_free(ext);
}

void SetTime(ASN1_TIME* field, std::chrono::system_clock::time_point t) {
  if (ASN1_TIME_set(field, std::chrono::system_clock::to_time_t(t)) == nullptr) Die("time");
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

}  // namespace

std::chrono::system_clock::time_point Utc(int year, int month, int day, int hour) {
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

EvpPkeyPtr NewKey() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) Die("EC key");
  return key;
}

X509Ptr Issue(const CertificateSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) Die("X509_new");
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("praefect tests"), -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  SetTime(X509_getm_notBefore(cert.get()), spec.not_before);
  SetTime(X509_getm_notAfter(cert.get()), spec.not_after);
  if (X509_set_pubkey(cert.get(), key) != 1) Die("pubkey");
  if (spec.is_ca) {
    AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
    AddExtension(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  std::string san;
  for (const std::string& dns : spec.dns_names) san += (san.empty() ? "DNS:" : ",DNS:") + dns;
  for (const std::string& ip : spec.ip_addresses) san += (san.empty() ? "IP:" : ",IP:") + ip;
  if (!san.empty()) AddExtension(cert.get(), issuer, NID_subject_alt_name, san);
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) Die("sign");
  return cert;
}

std::string ToPem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_X509(bio, cert) != 1) Die("PEM certificate");
  return BioText(bio);
}

std::string ToPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) Die("PEM key");
  return BioText(bio);
}

TestPki::TestPki() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "praefect-tls-test-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp");
  dir_ = tmpl;

  const auto begin = Utc(2020, 1, 1);
  const auto end = Utc(2099, 12, 31);
  EvpPkeyPtr ca_key = NewKey();
  X509Ptr ca = Issue({.common_name = "praefect test CA", .not_before = begin, .not_after = end, .is_ca = true},
                     ca_key.get(), nullptr, ca_key.get());
  Write("ca.pem", ToPem(ca.get()));
  EvpPkeyPtr other_ca_key = NewKey();
  X509Ptr other_ca = Issue({.common_name = "another test CA", .not_before = begin, .not_after = end, .is_ca = true},
                           other_ca_key.get(), nullptr, other_ca_key.get());
  Write("other_ca.pem", ToPem(other_ca.get()));

  EvpPkeyPtr server_key = NewKey();
  server_key_pem_ = ToPem(server_key.get());
  Write("server.key", server_key_pem_);
  CertificateSpec spec{.common_name = "praefect.test",
                       .dns_names = {"praefect.test"},
                       .ip_addresses = {"127.0.0.1"},
                       .not_before = begin,
                       .not_after = end};
  Write("server.pem", ToPem(Issue(spec, server_key.get(), ca.get(), ca_key.get()).get()));
  spec.not_after = Utc(2026, 11, 30, 12);
  Write("expired.pem", ToPem(Issue(spec, server_key.get(), ca.get(), ca_key.get()).get()));
  spec.not_before = Utc(2030, 1, 1);
  spec.not_after = end;
  Write("future.pem", ToPem(Issue(spec, server_key.get(), ca.get(), ca_key.get()).get()));
  Write("other.key", ToPem(NewKey().get()));

  EvpPkeyPtr client_key = NewKey();
  Write("client.key", ToPem(client_key.get()));
  Write("client.pem", ToPem(Issue({.common_name = "praefect client", .not_before = begin, .not_after = end},
                                  client_key.get(), ca.get(), ca_key.get())
                                .get()));
}

TestPki::~TestPki() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string TestPki::Write(const std::string& name, const std::string& text) const {
  const std::string path = Path(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) Die("cannot write " + path);
  return path;
}

TlsFiles TestPki::Files(const std::string& certificate, const std::string& key) const {
  TlsFiles files;
  files.certificate_path = Path(certificate);
  files.key_path = Path(key);
  return files;
}

}  // namespace praefect::http2::testing
