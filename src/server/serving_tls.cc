#include "server/serving_tls.h"

#include <sys/stat.h>

#include <chrono>
#include <functional>

#include "http2/certificate.h"
#include "http2/tls_layer.h"

namespace praefect::server {
namespace {

StatusOr<std::shared_ptr<const http2::TlsContext>> Build(const config::Tls& tls) {
  http2::TlsFiles files;
  files.certificate_path = tls.certificate_path;
  files.key_path = tls.key_path;
  files.key = tls.key;
  if (Status st = http2::CheckCertificateFiles(files, std::chrono::system_clock::now()); !st.ok()) return st;
  return http2::TlsContext::Server(files);
}

}  // namespace

StatusOr<std::unique_ptr<ServingTls>> ServingTls::Load(const config::Tls& tls) {
  const std::string stamp = Stamp(tls);
  auto context = Build(tls);
  if (!context.ok()) return context.status();
  auto out = std::unique_ptr<ServingTls>(new ServingTls(std::move(*context)));
  out->loaded_stamp_ = stamp;
  return out;
}

Status ServingTls::Reload(const config::Tls& tls) {
  const std::string stamp = Stamp(tls);
  auto context = Build(tls);
  if (!context.ok()) {
    failed_stamp_ = stamp;
    return context.status();
  }
  context_.store(std::move(*context));
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
