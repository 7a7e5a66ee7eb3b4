#pragma once

// Internal to src/http2/: reading PEM certificates and private keys, with
// errors that name the setting and the file and say what to do.

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status_or.h"
#include "http2/certificate.h"

namespace praefect::http2 {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

struct EvpPkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// `name "value"` for messages: tls.certificate_path "/etc/praefect/cert.pem".
std::string Setting(std::string_view name, std::string_view value);

// The certificates of the PEM file at `path`, in file order (a chain: the
// leaf first), at least one. `name` is the setting that gave the path
// ("tls.certificate_path"), for messages. Other PEM blocks are skipped.
StatusOr<std::vector<X509Ptr>> ReadCertificates(const std::string& path, std::string_view name);

// The private key of `files`: the inline `key` when set, else the file at
// `key_path`. Encrypted keys are refused (praefect has no passphrase to give).
StatusOr<EvpPkeyPtr> ReadPrivateKey(const TlsFiles& files);

// How `files`' key is named in messages: `tls.key`, `tls.key_path "/x"`, or
// files.key_name.
std::string KeySetting(const TlsFiles& files);

// What to do about a key that does not match its certificate.
std::string KeyMismatchAdvice(const TlsFiles& files);

// The subject of `cert` on one line ("CN=praefect.test,O=Example").
std::string SubjectOf(X509* cert);

// `time` as a point in time; false when OpenSSL cannot read it.
bool ToTimePoint(const ASN1_TIME* time, std::chrono::system_clock::time_point* out);

// "2026-11-30 12:00:00 UTC".
std::string FormatUtc(std::chrono::system_clock::time_point time);

// The reasons on OpenSSL's error queue of this thread, "; "-joined, and the
// queue emptied. "unknown OpenSSL error" when it is empty.
std::string DrainOpenSslErrors();

}  // namespace praefect::http2
