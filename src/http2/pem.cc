#include "http2/pem.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

namespace praefect::http2 {
namespace {

// No certificate or key file is anywhere near this; a larger file is a wrong
// path (a log, a device), not something to read whole.
constexpr size_t kMaxPemFileBytes = size_t{1} << 20;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr ReadOnlyBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// OpenSSL would otherwise ask the terminal for a passphrase.
int NoPassphrase(char*, int, int, void*) { return -1; }

bool Contains(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

Status ReadSmallFile(const std::string& path, const std::string& setting, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return FailedPrecondition(setting + ": cannot open the file: " + std::strerror(errno) +
                              ": check the path and that praefect's user may read it");
  }
  char buf[16384];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return FailedPrecondition(setting + ": cannot read the file: " + std::strerror(e) +
                                ": check the path and that praefect's user may read it");
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > kMaxPemFileBytes) {
      close(fd);
      return FailedPrecondition(setting +
                                ": the file is larger than 1 MiB, which no PEM certificate or key is: check the path");
    }
  }
  close(fd);
  return Status::Ok();
}

// Why a file that gave no certificate gave none.
std::string NoCertificateReason(std::string_view text, std::string_view name) {
  if (text.empty()) return "the file is empty: it must hold the certificate in PEM";
  if (Contains(text, "PRIVATE KEY-----")) {
    return "the file holds a private key but no certificate: are " + std::string(name) +
           " and the key's setting swapped?";
  }
  if (!Contains(text, "-----BEGIN ")) {
    return "the file is not PEM (no \"-----BEGIN CERTIFICATE-----\" line): convert a DER certificate with "
           "`openssl x509 -inform DER -in FILE -out FILE.pem`";
  }
  return "the file holds no \"-----BEGIN CERTIFICATE-----\" block: it must hold the certificate in PEM";
}

}  // namespace

std::string Setting(std::string_view name, std::string_view value) {
  std::string out(name);
  out += " \"";
  out += value;
  out += '"';
  return out;
}

StatusOr<std::vector<X509Ptr>> ReadCertificates(const std::string& path, std::string_view name) {
  if (path.empty()) return FailedPrecondition(std::string(name) + " is empty: set it to a PEM certificate file");
  const std::string setting = Setting(name, path);
  std::string text;
  if (Status st = ReadSmallFile(path, setting, &text); !st.ok()) return st;
  BioPtr bio = ReadOnlyBio(text);
  if (!bio) return Internal(setting + ": cannot parse the file: " + DrainOpenSslErrors());
  ERR_clear_error();
  std::vector<X509Ptr> certificates;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) certificates.emplace_back(cert);
  // The loop ends on "no start line" once the last block has been read; any
  // other error is a damaged block.
  const unsigned long last = ERR_peek_last_error();
  const bool clean_end = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (!clean_end || (certificates.empty() && Contains(text, "-----BEGIN CERTIFICATE-----"))) {
    return FailedPrecondition(setting + ": certificate " + std::to_string(certificates.size() + 1) +
                              " of the file cannot be read (OpenSSL: " + DrainOpenSslErrors() +
                              "): the file is damaged or truncated; export the certificate again in PEM");
  }
  ERR_clear_error();
  if (certificates.empty()) return FailedPrecondition(setting + ": " + NoCertificateReason(text, name));
  return certificates;
}

std::string KeySetting(const TlsFiles& files) {
  if (!files.key.empty()) return files.key_name.empty() ? files.config_name + ".key" : files.key_name;
  return Setting(files.config_name + ".key_path", files.key_path);
}

StatusOr<EvpPkeyPtr> ReadPrivateKey(const TlsFiles& files) {
  const std::string setting = KeySetting(files);
  std::string from_file;
  if (files.key.empty()) {
    if (files.key_path.empty()) {
      return FailedPrecondition("neither " + files.config_name + ".key_path nor " + files.config_name +
                                ".key is set: give the private key of " + files.config_name + ".certificate_path");
    }
    if (Status st = ReadSmallFile(files.key_path, setting, &from_file); !st.ok()) return st;
  }
  const std::string_view text = files.key.empty() ? std::string_view(from_file) : std::string_view(files.key);
  EvpPkeyPtr key;
  std::string failure;
  if (Contains(text, "ENCRYPTED")) {
    failure =
        "the key is encrypted and praefect has no passphrase to give: store it unencrypted "
        "(`openssl pkey -in KEY -out PLAIN`), readable only by praefect's user";
  } else if (BioPtr bio = ReadOnlyBio(text); bio) {
    ERR_clear_error();
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
    if (!key) {
      std::string openssl = DrainOpenSslErrors();
      if (text.empty()) {
        failure = "it is empty: it must hold the private key in PEM";
      } else if (!Contains(text, "-----BEGIN ")) {
        failure =
            "it is not PEM (no \"-----BEGIN PRIVATE KEY-----\" line): convert a DER key with "
            "`openssl pkey -inform DER -in KEY -out KEY.pem`";
      } else if (!Contains(text, "PRIVATE KEY-----")) {
        failure = "it holds no private key" +
                  std::string(Contains(text, "CERTIFICATE-----")
                                  ? " but a certificate: is it swapped with " + files.config_name + ".certificate_path?"
                                  : ": it must hold the private key in PEM");
      } else {
        failure = "the key cannot be read (OpenSSL: " + openssl + "): the file is damaged or truncated";
      }
    }
  } else {
    failure = "cannot parse it: " + DrainOpenSslErrors();
  }
  // The key's text is a secret: do not leave a copy behind in freed memory.
  if (!from_file.empty()) OPENSSL_cleanse(from_file.data(), from_file.size());
  if (!key) return FailedPrecondition(setting + ": " + failure);
  return key;
}

std::string KeyMismatchAdvice(const TlsFiles& files) {
  return files.key_mismatch_advice.empty() ? "configure the key the certificate was issued for"
                                           : files.key_mismatch_advice;
}

std::string SubjectOf(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) < 0) {
    ERR_clear_error();
    return "(unreadable subject)";
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  std::string out(data, n > 0 ? static_cast<size_t>(n) : 0);
  return out.empty() ? "(empty subject)" : out;
}

bool ToTimePoint(const ASN1_TIME* time, std::chrono::system_clock::time_point* out) {
  struct tm tm {};
  if (time == nullptr || ASN1_TIME_to_tm(time, &tm) != 1) {
    ERR_clear_error();
    return false;
  }
  *out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

std::string FormatUtc(std::chrono::system_clock::time_point time) {
  std::time_t t = std::chrono::system_clock::to_time_t(time);
  struct tm tm {};
  char buf[64];
  if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0) {
    return std::to_string(t) + " (Unix time)";
  }
  return buf;
}

std::string DrainOpenSslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    if (!out.empty()) out += "; ";
    if (const char* reason = ERR_reason_error_string(e)) {
      out += reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      out += buf;
    }
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

}  // namespace praefect::http2
