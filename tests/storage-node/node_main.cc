// praefect-storage-node: a Gitaly-protocol peer over real git repositories,
// for praefect's tests, benchmarks and demo. This file is the composition
// root: it loads the config, builds the services and runs the server until
// SIGINT/SIGTERM. Connections are accepted by NodeListener (plain gRPC, or
// praefect's backchannel), and calls that carry a reference transaction
// vote through NodeTransactions (call_transaction.h).
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "backchannel_registry.h"
#include "blob_service.h"
#include "call_transaction.h"
#include "filesystem_id.h"
#include "fs_util.h"
#include "hook_server.h"
#include "log/log.h"
#include "node_config.h"
#include "node_listener.h"
#include "ref_service.h"
#include "repository_service.h"
#include "internal_service.h"
#include "server_service.h"
#include "smarthttp_service.h"
#include "authorized_ssh_service.h"
#include "storage_locator.h"

namespace praefect::storagenode {
namespace {

int Usage() {
  std::fprintf(stderr, "usage: praefect-storage-node -config FILE\n");
  return 2;
}

std::string SelfDirectory() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "";
  return Dirname(std::string(self, static_cast<size_t>(n)));
}

// The directory of this binary when git-remote-gitaly sits beside it (the
// build tree's bin/, an installed libexec directory); ReplicateRepository's
// git finds the helper there. Empty otherwise: then it must be in PATH.
std::string HelperDirectory() {
  std::string dir = SelfDirectory();
  return access((dir + "/git-remote-gitaly").c_str(), X_OK) == 0 ? dir : "";
}

// The hooks of transactional calls (hook_main.cc) sit beside this binary,
// in the build tree's bin/ as where it is installed.
constexpr const char* kHookProgram = "praefect-storage-node-hook";

// Sets up what transactional calls need: the hook socket and the hooks
// directory in the node's private `home`. Without the hook program the node
// still serves everything else, and refuses transactional calls saying why.
StatusOr<std::unique_ptr<HookServer>> PrepareTransactions(const std::string& home, std::string* hooks_dir) {
  auto hooks = HookServer::Start(home + "/hook.sock");
  if (!hooks.ok()) return hooks.status();
  const std::string program = SelfDirectory() + "/" + kHookProgram;
  if (access(program.c_str(), X_OK) != 0) {
    log::Warn("the hook program is missing: calls that carry a reference transaction will be refused",
              {{"path", program}});
    return hooks;
  }
  *hooks_dir = home + "/hooks";
  if (Status st = NodeTransactions::PrepareHooksDirectory(*hooks_dir, program); !st.ok()) return st;
  return hooks;
}

int Run(const std::string& config_path) {
  auto cfg = LoadNodeConfig(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "praefect-storage-node: %s\n", cfg.status().message().c_str());
    return 2;
  }
  for (const auto& s : cfg->storages) {
    if (Status st = MakeDirs(s.path); !st.ok()) {
      std::fprintf(stderr, "praefect-storage-node: storage \"%s\": %s\n", s.name.c_str(), st.message().c_str());
      return 1;
    }
    // Created at start, as Gitaly does, so the id is stable from the first call.
    if (auto id = ReadOrCreateFilesystemId(s.path); !id.ok()) {
      std::fprintf(stderr, "praefect-storage-node: storage \"%s\": %s\n", s.name.c_str(),
                   id.status().message().c_str());
      return 1;
    }
  }
  StorageRepoLocator locator(cfg->storages);
  NodeDeps deps{&locator, GitEnv{cfg->git_binary, "", ""}, cfg->auth_token, cfg->auth_transitioning};
  char home_template[] = "/tmp/praefect-storage-node-home-XXXXXX";
  if (mkdtemp(home_template) == nullptr) {
    std::perror("praefect-storage-node: creating a git HOME");
    return 1;
  }
  deps.git.home = home_template;
  deps.git.path_prefix = HelperDirectory();
  if (Status st = PrepareGitHome(deps.git); !st.ok()) {
    std::fprintf(stderr, "praefect-storage-node: %s\n", st.message().c_str());
    return 1;
  }

  BackchannelRegistry backchannels;
  std::string hooks_dir;
  auto hooks = PrepareTransactions(deps.git.home, &hooks_dir);
  if (!hooks.ok()) {
    std::fprintf(stderr, "praefect-storage-node: %s\n", hooks.status().message().c_str());
    return 1;
  }
  NodeTransactions transactions(&backchannels, hooks->get(), hooks_dir, SelfDirectory() + "/" + kHookProgram);
  deps.transactions = &transactions;
  // Bound before the server starts, so that a busy port fails the start.
  auto listener = NodeListener::Bind(cfg->listen_addr, cfg->socket_path);
  if (!listener.ok()) {
    std::fprintf(stderr, "praefect-storage-node: %s\n", listener.status().message().c_str());
    return 1;
  }

  RepositoryServiceImpl repository(&deps);
  RefServiceImpl ref(&deps);
  BlobServiceImpl blob(&deps);
  ServerServiceImpl server_info(&deps, cfg->storages, DetectGitVersion(deps.git));
  InternalServiceImpl internal(&deps, cfg->storages);
  SshServiceOptions ssh_options;
  ssh_options.git_binary = deps.git.git_binary;
  ssh_options.home = deps.git.home;
  ssh_options.transactions = &transactions;
  SmartHttpServiceImpl smarthttp(&deps, ssh_options);
  AuthorizedSshService ssh(&deps, std::move(ssh_options));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // Gitaly's keepalive enforcement (MinTime 20 s, PermitWithoutStream):
  // praefect pings its nodes every 20 s during calls; grpc's default (5 min)
  // would answer a long idle stream's pings with GOAWAY. 10 s leaves room
  // for timer jitter.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // No listening port: NodeListener accepts and hands each connection (or
  // each stream of a backchannel) to the server as a descriptor, which gets
  // the arguments above as a listening port's connections would.
  builder.RegisterService(&repository);
  builder.RegisterService(&ref);
  builder.RegisterService(&blob);
  builder.RegisterService(&server_info);
  builder.RegisterService(&internal);
  builder.RegisterService(&ssh);
  builder.RegisterService(&smarthttp);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "praefect-storage-node: cannot start the gRPC server (see grpc's messages above)\n");
    return 1;
  }
  (*listener)->Start(server.get(), &backchannels);
  const int tcp_port = (*listener)->tcp_port();
  if (!cfg->listen_addr.empty()) {
    std::string host = cfg->listen_addr.substr(0, cfg->listen_addr.rfind(':'));
    if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
    std::printf("listening on tcp://%s:%d\n", host.c_str(), tcp_port);
  }
  if (!cfg->socket_path.empty()) std::printf("listening on unix:%s\n", cfg->socket_path.c_str());
  std::fflush(stdout);
  log::Info("storage node started", {{"storages", static_cast<long long>(cfg->storages.size())}});

  // Signals were blocked in every thread before the server started; wait for
  // one here and shut down.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  log::Info("storage node stopping", {{"signal", sig}});
  (*listener)->Stop();
  // The backchannels keep running meanwhile: calls finishing now may vote.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  (*hooks)->Stop();
  backchannels.Shutdown();
  (void)RemoveTree(deps.git.home);
  return 0;
}

}  // namespace
}  // namespace praefect::storagenode

int main(int argc, char** argv) {
  std::string config;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-config" || a == "--config") && i + 1 < argc) config = argv[++i];
    else if (a.rfind("-config=", 0) == 0) config = a.substr(8);
    else if (a.rfind("--config=", 0) == 0) config = a.substr(9);
    else return praefect::storagenode::Usage();
  }
  if (config.empty()) return praefect::storagenode::Usage();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return praefect::storagenode::Run(config);
}
