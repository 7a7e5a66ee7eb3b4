#pragma once

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace praefect::storagenode::testing {

// A praefect-storage-node child process on a temporary storage. Start()
// writes the config, spawns the binary and waits (polling with a deadline)
// for its "listening on tcp://..." line. The destructor stops it (SIGTERM,
// then SIGKILL) and removes the temporary directory. Not thread-safe.
class NodeProcess {
 public:
  NodeProcess() = default;
  ~NodeProcess();
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // `extra_toml` is appended to the generated config (e.g. an [auth] table).
  // Returns false (and prints why) on failure.
  // `storage_name` names the node's one storage.
  bool Start(const std::string& extra_toml = "", const std::string& storage_name = "default");
  void Stop();
  // SIGKILL, as a crash; reaps the child.
  void Crash();

  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }  // "127.0.0.1:<port>"
  const std::string& storage_path() const { return storage_; }
  const std::string& storage_name() const { return storage_name_; }
  const std::string& root() const { return root_; }
  std::shared_ptr<grpc::Channel> Channel() const;

  // Peak resident set (VmHWM) of the node in KiB, or -1.
  long PeakRssKiB() const;

 private:
  pid_t pid_ = -1;
  std::string root_;
  std::string storage_;
  std::string storage_name_;
  std::string address_;
};

// A client context with a deadline, and an authorization header when
// `authorization` is non-empty.
std::unique_ptr<grpc::ClientContext> Ctx(const std::string& authorization = "",
                                         std::chrono::seconds timeout = std::chrono::seconds(60));

// Calls a unary method by full name with raw request bytes (for methods the
// packaged stubs lack, or services the node does not serve); blocks.
// `metadata` is added to the call.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& request, std::string* response, const std::string& authorization = "",
                      const std::vector<std::pair<std::string, std::string>>& metadata = {});

}  // namespace praefect::storagenode::testing
