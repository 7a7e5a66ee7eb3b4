#pragma once

// Checks of a certificate and its key before praefect serves them, so that
// an expired or mismatched certificate is refused when the configuration is
// loaded or reloaded, naming the file, rather than discovered by clients.

#include <chrono>
#include <string>

#include "common/status.h"
#include "common/status_or.h"

namespace praefect::http2 {

// A certificate chain and its private key, as the configuration names them
// ([tls] certificate_path, key_path, key).
struct TlsFiles {
  std::string certificate_path;  // PEM: the certificate, then the intermediates of its chain
  std::string key_path;          // PEM private key, read when `key` is empty
  std::string key;               // PEM private key inline (e.g. a systemd credential's contents)
  // How the configuration names these settings, for messages: "tls" gives
  // `tls.certificate_path "/etc/praefect/cert.pem": ...` and `tls.key: ...`.
  std::string config_name = "tls";
  // How messages name the inline `key` when it did not come from the
  // configuration (a systemd credential): `the systemd credential
  // "/run/credentials/praefect.service/tls-key"`. Empty: `tls.key`.
  std::string key_name = "";
  // What to do when the key does not match the certificate. Empty:
  // "configure the key the certificate was issued for".
  std::string key_mismatch_advice = "";
};

// OK when the certificates of `files.certificate_path` are all valid at `now`
// and the key of `files` is the leaf certificate's. Otherwise
// FAILED_PRECONDITION naming the setting and the file, and saying why: the
// file cannot be read or is not PEM, a certificate expired ("expired on
// 2026-11-30 12:00:00 UTC") or is not valid yet, the key does not match.
[[nodiscard]] Status CheckCertificateFiles(const TlsFiles& files, std::chrono::system_clock::time_point now);

// The part of CheckCertificateFiles that needs no key: the certificates of
// `files.certificate_path` can be read and are all valid at `now`.
[[nodiscard]] Status CheckCertificateValidity(const TlsFiles& files, std::chrono::system_clock::time_point now);

// The expiry (notAfter) of the leaf certificate of `files.certificate_path`,
// for a STATUS= line or a metrics gauge. The key is not read.
StatusOr<std::chrono::system_clock::time_point> CertificateNotAfter(const TlsFiles& files);

}  // namespace praefect::http2
