#pragma once

// Test peers for the proxy: a raw-bytes backend, a Director whose decisions
// a test sets, a proxy server, and a blocking client. Everything runs
// in-process over unix sockets in a fresh temporary directory, so metadata
// and flow control go through real HTTP/2 framing.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>

#include "http2/director.h"
#include "http2/server.h"

namespace praefect::http2::testing {

using StringMultimap = std::multimap<std::string, std::string>;

constexpr std::chrono::seconds kWait{20};  // Bound of every wait in a test.

std::string Flatten(const grpc::ByteBuffer& buffer);
grpc::ByteBuffer Buffer(const std::string& bytes);
StringMultimap Copy(const std::multimap<grpc::string_ref, grpc::string_ref>& md);
StringMultimap Copy(const HeaderList& md);

// What a Fixture's data plane is built with.
struct Options {
  uint64_t max_message_bytes = UINT32_MAX;
  std::string max_message_hint;
  // The streams' initial windows (client side: before admission).
  int32_t initial_stream_window = 64 * 1024;
  int32_t admitted_window = 1024 * 1024;
  size_t forward_high_water = 256 * 1024;
};
std::vector<std::string> Values(const StringMultimap& md, const std::string& key);

// Polls `cond` until it holds or kWait passes.
bool Eventually(const std::function<bool()>& cond);

// What the backend saw of one call.
struct BackendCallRecord {
  std::string method;
  StringMultimap metadata;
  std::chrono::system_clock::time_point deadline;
  std::vector<std::string> messages;
  bool half_closed = false;  // A read ended and the call was not cancelled.
  bool cancelled = false;
};

// The upstream: a callback generic service over raw bytes. Methods
// ("/test.Backend/<name>"):
//   Echo     writes back every message; OK after the client half-closes.
//   Collect  reads every message, then answers "<count>:<m1>|<m2>|...".
//   Count    reads every message, then answers "<count> <total bytes>".
//   Stream   first message "<n> <size>": writes n messages of size bytes
//            (message i filled with 'a' + i % 26), then OK.
//   Fail     writes x-fail-messages (metadata) messages, then fails with
//            FAILED_PRECONDITION, error details and trailers (below).
//   Hang     never answers; finishes when cancelled.
//   Headers  sends initial metadata x-early: yes at once, swallows the first
//            message, then like Echo.
// Every method sends initial metadata x-initial: i1 (Headers: x-early too).
class Backend {
 public:
  static constexpr const char* kFailMessage = "backend refuses: it broke";
  static const std::string kFailDetails;
  static const std::string kTrailerBin;

  explicit Backend(const std::string& socket_path);
  ~Backend();

  std::vector<BackendCallRecord> Calls();
  size_t CallCount();
  int64_t StreamSent() const { return stream_sent_.load(); }

 private:
  class Call;
  class Service;
  friend class Call;

  size_t NewRecord(const std::string& method, StringMultimap metadata, std::chrono::system_clock::time_point deadline);
  void Update(size_t index, const std::function<void(BackendCallRecord*)>& fn);

  std::mutex mu_;
  std::vector<BackendCallRecord> calls_;
  std::atomic<int64_t> stream_sent_{0};
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

// A Director that routes by a function the test sets, optionally answering
// from another thread, and records what it was asked and what each Route's
// finalizer received.
class TestDirector final : public Director {
 public:
  struct Seen {
    std::string method;
    StringMultimap metadata;
    std::optional<std::string> first_message;
  };
  using Decide = std::function<StatusOr<Route>(const Seen&)>;

  ~TestDirector() override;

  void Direct(const CallInfo& call, Done done) override;
  Status Admit(const CallInfo& call) override;

  // Admits (or refuses) every call with `admit` before anything is read;
  // unset admits all.
  void set_admit(std::function<Status(const Seen&)> admit);
  // How many calls Admit saw.
  int admitted_calls();

  // Routes every call with `decide`; each Route's finalizer is wrapped to
  // record its status.
  void set_decide(Decide decide);
  // Answer from a separate thread, after `gate` (if set) returns.
  void set_async(std::function<void()> gate);
  // Drop `done` without answering.
  void set_drop(bool drop);

  std::vector<Seen> seen();
  // The finalizers' statuses, as grpc::Status for comparison with the client's.
  std::vector<grpc::Status> finalized();

 private:
  std::mutex mu_;
  Decide decide_;
  std::function<Status(const Seen&)> admit_;
  int admit_calls_ = 0;
  bool async_ = false;
  bool drop_ = false;
  std::function<void()> gate_;
  std::vector<Seen> seen_;
  std::shared_ptr<std::vector<grpc::Status>> finalized_ = std::make_shared<std::vector<grpc::Status>>();
  std::shared_ptr<std::mutex> finalized_mu_ = std::make_shared<std::mutex>();
  std::vector<std::thread> threads_;
};

// Backend, director and proxy server in one temporary directory.
// Destruction order: servers shut down (in-flight calls cancelled), then
// the director's threads are joined.
class Fixture {
 public:
  // `options` configure the proxy server and the upstream channel.
  explicit Fixture(const Options& options = Options());
  ~Fixture();

  std::shared_ptr<grpc::Channel> BackendChannel();
  // A channel to the proxy, as a client would dial it.
  std::shared_ptr<grpc::Channel> ProxyChannel();
  std::string dir() const { return dir_; }

  // A Route to the backend (the default decision).
  Route BackendRoute();
  // Shuts the proxy server down now, cancelling its calls.
  void ShutdownProxy();

  TestDirector director;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Server> server;

 private:
  std::string dir_;
  std::shared_ptr<grpc::Channel> backend_channel_;
  std::shared_ptr<const Upstream> backend_upstream_;
};

// A blocking client call over the callback API: each operation waits for
// its completion (bounded by kWait; a timeout fails the test).
class BlockingCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // `setup` may add metadata or a deadline to the context before the call starts.
  BlockingCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
               const std::function<void(grpc::ClientContext*)>& setup = nullptr);
  ~BlockingCall() override;

  bool Write(const std::string& bytes);
  void WritesDone();
  std::optional<std::string> Read();
  // Waits for the response headers (initial metadata) without reading.
  bool WaitForHeaders();
  void Cancel() { context_.TryCancel(); }
  grpc::Status Finish();

  grpc::ClientContext& context() { return context_; }
  StringMultimap InitialMetadata() { return Copy(context_.GetServerInitialMetadata()); }
  StringMultimap TrailingMetadata() { return Copy(context_.GetServerTrailingMetadata()); }

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  bool Wait(const std::function<bool()>& cond);

  grpc::ClientContext context_;
  grpc::ByteBuffer out_;
  grpc::ByteBuffer in_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool headers_ = false;
  std::optional<bool> read_ok_;
  std::optional<bool> write_ok_;
  bool writes_done_ = false;
  bool done_ = false;
  bool hold_released_ = false;
  grpc::Status status_;
};

// Runs one call with `requests` written then a half-close; returns the
// responses and the status.
struct CallResult {
  std::vector<std::string> responses;
  grpc::Status status;
  StringMultimap initial;
  StringMultimap trailing;
};
CallResult RunCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                   const std::vector<std::string>& requests,
                   const std::function<void(grpc::ClientContext*)>& setup = nullptr);

}  // namespace praefect::http2::testing
