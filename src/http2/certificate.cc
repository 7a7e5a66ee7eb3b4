#include "http2/certificate.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "http2/pem.h"

namespace praefect::http2 {
namespace {

// "the certificate (CN=praefect.test)" for the leaf, "certificate 2 of the
// chain (CN=Example Intermediate)" for the others.
std::string WhichCertificate(size_t index, X509* cert) {
  std::string which = index == 0 ? "the certificate" : "certificate " + std::to_string(index + 1) + " of the chain";
  return which + " (" + SubjectOf(cert) + ")";
}

Status CheckValidity(size_t index, X509* cert, const std::string& setting, std::chrono::system_clock::time_point now) {
  std::chrono::system_clock::time_point not_before, not_after;
  if (!ToTimePoint(X509_get0_notBefore(cert), &not_before) || !ToTimePoint(X509_get0_notAfter(cert), &not_after)) {
    return FailedPrecondition(setting + ": " + WhichCertificate(index, cert) +
                              " has a validity period that cannot be read: issue a new certificate");
  }
  if (now > not_after) {
    return FailedPrecondition(setting + ": " + WhichCertificate(index, cert) + " expired on " + FormatUtc(not_after) +
                              ": clients refuse it; install a renewed certificate (and its key) and reload praefect");
  }
  if (now < not_before) {
    return FailedPrecondition(setting + ": " + WhichCertificate(index, cert) + " is not valid before " +
                              FormatUtc(not_before) + " (it is " + FormatUtc(now) +
                              " here): check this machine's clock, or keep the previous certificate until then");
  }
  return Status::Ok();
}

}  // namespace

namespace {

// The chain of `files`, each certificate valid at `now`.
StatusOr<std::vector<X509Ptr>> ReadValidChain(const TlsFiles& files, std::chrono::system_clock::time_point now) {
  const std::string name = files.config_name + ".certificate_path";
  StatusOr<std::vector<X509Ptr>> chain = ReadCertificates(files.certificate_path, name);
  if (!chain.ok()) return chain.status();
  const std::string setting = Setting(name, files.certificate_path);
  for (size_t i = 0; i < chain->size(); ++i) {
    if (Status st = CheckValidity(i, (*chain)[i].get(), setting, now); !st.ok()) return st;
  }
  return chain;
}

}  // namespace

Status CheckCertificateValidity(const TlsFiles& files, std::chrono::system_clock::time_point now) {
  return ReadValidChain(files, now).status();
}

Status CheckCertificateFiles(const TlsFiles& files, std::chrono::system_clock::time_point now) {
  StatusOr<std::vector<X509Ptr>> chain = ReadValidChain(files, now);
  if (!chain.ok()) return chain.status();
  const std::string setting = Setting(files.config_name + ".certificate_path", files.certificate_path);
  StatusOr<EvpPkeyPtr> key = ReadPrivateKey(files);
  if (!key.ok()) return key.status();
  X509* leaf = chain->front().get();
  ERR_clear_error();
  if (X509_check_private_key(leaf, key->get()) != 1) {
    ERR_clear_error();
    return FailedPrecondition(KeySetting(files) + ": the key does not match " + WhichCertificate(0, leaf) + " of " +
                              setting + ": " + KeyMismatchAdvice(files));
  }
  return Status::Ok();
}

StatusOr<std::chrono::system_clock::time_point> CertificateNotAfter(const TlsFiles& files) {
  const std::string name = files.config_name + ".certificate_path";
  StatusOr<std::vector<X509Ptr>> chain = ReadCertificates(files.certificate_path, name);
  if (!chain.ok()) return chain.status();
  std::chrono::system_clock::time_point not_after;
  if (!ToTimePoint(X509_get0_notAfter(chain->front().get()), &not_after)) {
    return FailedPrecondition(Setting(name, files.certificate_path) + ": " + WhichCertificate(0, chain->front().get()) +
                              " has an expiry date that cannot be read: issue a new certificate");
  }
  return not_after;
}

}  // namespace praefect::http2
