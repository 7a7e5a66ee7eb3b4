#include "server/serving_tls.h"

#include <sys/stat.h>

#include <chrono>
#include <functional>

#include "http2/certificate.h"
#include "http2/tls_layer.h"

namespace praefect::server {

http2::TlsFiles ServingTlsFiles(const config::Tls& tls) {
  http2::TlsFiles files;
  files.certificate_path = tls.certificate_path;
  files.key_path = tls.key_path;
  files.key = tls.key;
  if (!tls.key_credential.empty()) {
    files.key_name = "the systemd credential \"" + tls.key_credential + "\"";
    // systemd copies the credential when the service starts; a reload sees
    // the same copy (systemd 252), so a new key needs a restart.
    files.key_mismatch_advice =
        "put the certificate's key in /etc/credstore/praefect.tls-key (or the file LoadCredential=tls-key: names) "
        "and restart praefect (systemctl restart praefect: systemd reads credentials only when the service starts), "
        "or install a certificate for the key praefect has (certbot --reuse-key)";
  }
  return files;
}

Status CheckServingCertificate(const config::Tls& tls, bool with_key, std::chrono::system_clock::time_point now) {
  const http2::TlsFiles files = ServingTlsFiles(tls);
  return with_key ? http2::CheckCertificateFiles(files, now) : http2::CheckCertificateValidity(files, now);
}

StatusOr<ServingTls::Loaded> ServingTls::Build(const config::Tls& tls, std::chrono::system_clock::time_point now) {
  const http2::TlsFiles files = ServingTlsFiles(tls);
  if (Status st = http2::CheckCertificateFiles(files, now); !st.ok()) return st;
  auto not_after = http2::CertificateNotAfter(files);
  if (!not_after.ok()) return not_after.status();
  auto context = http2::TlsContext::Server(files);
  if (!context.ok()) return context.status();
  return Loaded{std::move(*context), *not_after};
}

StatusOr<std::unique_ptr<ServingTls>> ServingTls::Load(const config::Tls& tls) {
  const std::string stamp = Stamp(tls);
  auto loaded = Build(tls, std::chrono::system_clock::now());
  if (!loaded.ok()) return loaded.status();
  auto out = std::unique_ptr<ServingTls>(new ServingTls(std::move(loaded->context)));
  out->not_after_.store(loaded->not_after);
  out->loaded_stamp_ = stamp;
  return out;
}

Status ServingTls::Reload(const config::Tls& tls) {
  const std::string stamp = Stamp(tls);
  auto loaded = Build(tls, std::chrono::system_clock::now());
  if (!loaded.ok()) {
    failed_stamp_ = stamp;
    return loaded.status();
  }
  // Connections accepted from now on get the new context; those up keep
  // theirs (each TLS layer holds a reference to the context it began with).
  context_.store(std::move(loaded->context));
  not_after_.store(loaded->not_after);
  loaded_stamp_ = stamp;
  failed_stamp_.clear();
  return Status::Ok();
}

std::optional<Status> ServingTls::ReloadIfChanged(const config::Tls& tls) {
  const std::string stamp = Stamp(tls);
  if (stamp == loaded_stamp_ || stamp == failed_stamp_) return std::nullopt;
  return Reload(tls);
}

std::string ServingTls::Stamp(const config::Tls& tls) {
  std::string out;
  for (const std::string* path : {&tls.certificate_path, &tls.key_path}) {
    struct stat st {};
    if (path->empty() || stat(path->c_str(), &st) != 0) {
      out += "-;";
      continue;
    }
    out += std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
           "." + std::to_string(st.st_mtim.tv_nsec) + ";";
  }
  return out + std::to_string(std::hash<std::string>{}(tls.key));
}

http2::Server::MakeSecure ServingTls::ForListener() {
  return [this](const std::string& peer) -> StatusOr<std::unique_ptr<http2::SecureLayer>> {
    return http2::ServerTls(context_.load(), peer);
  };
}

StatusOr<std::shared_ptr<const http2::TlsContext>> NodeTlsContext() {
  return http2::TlsContext::Client(http2::ClientOptions{});
}

}  // namespace praefect::server
