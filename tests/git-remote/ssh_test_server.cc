// A minimal gRPC server for the git-remote-gitaly tests: only SSHService,
// one storage ("default" unless --storage-name) on a unix socket, and an
// optional v2 token check. Prints "listening on unix:<path>" when ready and
// stops on SIGTERM or SIGINT.
//
//   ssh_test_server --socket PATH --storage DIR [--storage-name NAME] [--token SECRET]

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "auth/token.h"
#include "ssh_service.h"

namespace {

using praefect::StatusOr;
using praefect::storagenode::RepoLocator;
using praefect::storagenode::SshService;

class SingleStorageLocator final : public RepoLocator {
 public:
  SingleStorageLocator(std::string name, std::string dir) : name_(std::move(name)), dir_(std::move(dir)) {}

  StatusOr<std::string> Locate(const gitaly::Repository& repo) const override {
    if (repo.storage_name() != name_) {
      return praefect::InvalidArgument("storage \"" + repo.storage_name() + "\" is not on this node (it has \"" +
                                       name_ + "\")");
    }
    const std::string& rel = repo.relative_path();
    if (rel.empty() || rel[0] == '/') {
      return praefect::InvalidArgument("relative_path \"" + rel + "\" must be a non-empty relative path");
    }
    size_t start = 0;
    while (start <= rel.size()) {
      size_t end = rel.find('/', start);
      if (end == std::string::npos) end = rel.size();
      if (std::string_view(rel).substr(start, end - start) == "..") {
        return praefect::InvalidArgument("relative_path \"" + rel + "\" escapes the storage");
      }
      start = end + 1;
    }
    return dir_ + "/" + rel;
  }

 private:
  const std::string name_;
  const std::string dir_;
};

// Checks the v2 token, then hands the stream to the real service.
class TokenCheckedSsh final : public gitaly::SSHService::Service {
 public:
  TokenCheckedSsh(SshService& inner, std::string token) : inner_(inner), token_(std::move(token)) {}

  grpc::Status SSHUploadPack(
      grpc::ServerContext* c,
      grpc::ServerReaderWriter<gitaly::SSHUploadPackResponse, gitaly::SSHUploadPackRequest>* s) override {
    grpc::Status auth = Check(c);
    return auth.ok() ? inner_.SSHUploadPack(c, s) : auth;
  }
  grpc::Status SSHReceivePack(
      grpc::ServerContext* c,
      grpc::ServerReaderWriter<gitaly::SSHReceivePackResponse, gitaly::SSHReceivePackRequest>* s) override {
    grpc::Status auth = Check(c);
    return auth.ok() ? inner_.SSHReceivePack(c, s) : auth;
  }

 private:
  grpc::Status Check(grpc::ServerContext* c) const {
    if (token_.empty()) return grpc::Status::OK;
    std::string value;
    auto it = c->client_metadata().find(std::string(praefect::auth::kAuthorizationMetadataKey));
    if (it != c->client_metadata().end()) value.assign(it->second.data(), it->second.size());
    praefect::Status s = praefect::auth::VerifyV2(value, token_, std::chrono::system_clock::now());
    return s.ok() ? grpc::Status::OK : grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
  }

  SshService& inner_;
  const std::string token_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string socket_path, storage_dir, storage_name = "default", token;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--socket") socket_path = argv[i + 1];
    else if (flag == "--storage") storage_dir = argv[i + 1];
    else if (flag == "--storage-name") storage_name = argv[i + 1];
    else if (flag == "--token") token = argv[i + 1];
    else {
      std::fprintf(stderr, "ssh_test_server: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (socket_path.empty() || storage_dir.empty()) {
    std::fprintf(stderr, "usage: ssh_test_server --socket PATH --storage DIR [--storage-name NAME] [--token S]\n");
    return 2;
  }

  // Block the stop signals in every thread; main waits for them below.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  SingleStorageLocator locator(storage_name, storage_dir);
  SshService ssh(locator);
  TokenCheckedSsh checked(ssh, token);

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(&checked);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "ssh_test_server: cannot listen on unix:%s\n", socket_path.c_str());
    return 1;
  }
  std::printf("listening on unix:%s\n", socket_path.c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}
