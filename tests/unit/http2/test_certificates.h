#pragma once

// Throwaway certificates made at test time with OpenSSL's C API, so that no
// private key is checked in. Used by the http2 TLS tests and the tls_filter
// fuzz target.

#include <chrono>
#include <string>
#include <vector>

#include "http2/certificate.h"
#include "http2/pem.h"

namespace praefect::http2::testing {

// A point in time, UTC: Utc(2026, 11, 30, 12).
std::chrono::system_clock::time_point Utc(int year, int month, int day, int hour = 0);

struct CertificateSpec {
  std::string common_name;
  std::vector<std::string> dns_names = {};
  std::vector<std::string> ip_addresses = {};
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
  bool is_ca = false;
};

// A new EC P-256 key.
EvpPkeyPtr NewKey();

// A certificate for `key` as `spec` says, signed by `issuer_key` with
// `issuer` as issuer name (self-signed when `issuer` is null).
X509Ptr Issue(const CertificateSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key);

std::string ToPem(X509* cert);
std::string ToPem(EVP_PKEY* key);

// A directory of PEM files, removed with the object:
//   ca.pem / other_ca.pem    two unrelated CAs
//   server.pem + server.key  "praefect.test" and 127.0.0.1, issued by ca,
//                            valid 2020-01-01 .. 2099-12-31
//   expired.pem              expired on 2026-11-30 12:00:00 UTC (server.key)
//   future.pem               valid from 2030-01-01 00:00:00 UTC (server.key)
//   other.key                a key that matches none of them
//   client.pem + client.key  "praefect client", issued by ca
class TestPki {
 public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  // Writes `text` to Path(name) and returns the path.
  std::string Write(const std::string& name, const std::string& text) const;

  TlsFiles server() const { return Files("server.pem", "server.key"); }
  TlsFiles Files(const std::string& certificate, const std::string& key) const;
  const std::string& server_key_pem() const { return server_key_pem_; }

 private:
  std::string dir_;
  std::string server_key_pem_;
};

}  // namespace praefect::http2::testing
