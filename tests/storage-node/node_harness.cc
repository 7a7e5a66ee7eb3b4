#include "node_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <vector>

#include <grpcpp/generic/generic_stub.h>

#include "fs_util.h"

extern char** environ;

namespace praefect::storagenode::testing {

namespace {

// Every node still running. A failed cmocka assertion longjmps out of the
// test, skipping the destructors of its local NodeProcess objects; the exit
// handler kills what they left, so no node outlives the test binary (and
// holds its output pipe open).
std::mutex live_mu;
std::vector<pid_t>& LiveNodes() {
  static std::vector<pid_t> live;
  return live;
}

void KillLiveNodes() {
  std::lock_guard<std::mutex> lock(live_mu);
  for (pid_t pid : LiveNodes()) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  LiveNodes().clear();
}

void Track(pid_t pid) {
  static bool registered = (std::atexit(KillLiveNodes), true);
  (void)registered;
  std::lock_guard<std::mutex> lock(live_mu);
  LiveNodes().push_back(pid);
}

void Untrack(pid_t pid) {
  std::lock_guard<std::mutex> lock(live_mu);
  auto& live = LiveNodes();
  for (size_t i = 0; i < live.size(); ++i) {
    if (live[i] == pid) {
      live.erase(live.begin() + static_cast<long>(i));
      break;
    }
  }
}

}  // namespace

NodeProcess::~NodeProcess() {
  Stop();
  if (!root_.empty()) (void)RemoveTree(root_);
}

bool NodeProcess::Start(const std::string& extra_toml, const std::string& storage_name) {
  char templ[] = "/tmp/storage-node-test-XXXXXX";
  if (mkdtemp(templ) == nullptr) return false;
  root_ = templ;
  storage_ = root_ + "/storage";
  storage_name_ = storage_name;
  std::string config = root_ + "/node.toml";
  {
    std::ofstream out(config);
    out << "listen_addr = \"127.0.0.1:0\"\n" << extra_toml << "\n[[storage]]\nname = \"" << storage_name << "\"\npath = \""
        << storage_ << "\"\n";
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<std::string> args = {NODE_BINARY, "-config", config};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Under AddressSanitizer the quarantine keeps freed memory resident (256
  // MiB by default), which would hide what the node itself holds; a small
  // quarantine keeps the memory bound of the blob test meaningful.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "ASAN_OPTIONS=", 13) != 0) env_strings.push_back(*e);
  }
  const char* asan = std::getenv("ASAN_OPTIONS");
  env_strings.push_back(std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") +
                        "quarantine_size_mb=8");
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  int rc = posix_spawn(&pid_, NODE_BINARY, &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc == 0) Track(pid_);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    std::fprintf(stderr, "spawning %s: %s\n", NODE_BINARY, std::strerror(rc));
    return false;
  }
  // Read the readiness line, polling against a deadline.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string text;
  const std::string prefix = "listening on tcp://";
  while (std::chrono::steady_clock::now() < deadline) {
    struct pollfd p = {out[0], POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    ssize_t n = read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    size_t at = text.find(prefix);
    size_t nl = at == std::string::npos ? std::string::npos : text.find('\n', at);
    if (nl != std::string::npos) {
      address_ = text.substr(at + prefix.size(), nl - at - prefix.size());
      close(out[0]);
      return true;
    }
  }
  close(out[0]);
  std::fprintf(stderr, "node did not report readiness; stdout so far: %s\n", text.c_str());
  Stop();
  return false;
}

void NodeProcess::Stop() {
  if (pid_ <= 0) return;
  Untrack(pid_);
  kill(pid_, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);  // polling the child's exit, bounded by the deadline
  }
  pid_ = -1;
}

void NodeProcess::Crash() {
  if (pid_ <= 0) return;
  Untrack(pid_);
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::shared_ptr<grpc::Channel> NodeProcess::Channel() const {
  return grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
}

long NodeProcess::PeakRssKiB() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::unique_ptr<grpc::ClientContext> Ctx(const std::string& authorization, std::chrono::seconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!authorization.empty()) ctx->AddMetadata("authorization", authorization);
  return ctx;
}

grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& request, std::string* response, const std::string& authorization,
                      const std::vector<std::pair<std::string, std::string>>& metadata) {
  grpc::GenericStub stub(channel);
  grpc::Slice slice(request);
  grpc::ByteBuffer in(&slice, 1), out;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status result;
  auto ctx = Ctx(authorization);
  for (const auto& [key, value] : metadata) ctx->AddMetadata(key, value);
  stub.UnaryCall(ctx.get(), method, grpc::StubOptions(), &in, &out, [&](grpc::Status st) {
    std::lock_guard<std::mutex> lock(mu);
    result = st;
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return done; });
  if (result.ok() && response) {
    std::vector<grpc::Slice> slices;
    (void)out.Dump(&slices);
    response->clear();
    for (auto& s : slices) response->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return result;
}

}  // namespace praefect::storagenode::testing
