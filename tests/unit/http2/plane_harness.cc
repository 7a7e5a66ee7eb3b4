#include "plane_harness.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include <grpc/grpc.h>
#include <sstream>

#include "test_support.h"

namespace praefect::http2::testing {

const std::string Backend::kFailDetails = std::string("\x08\x09""details\x00\xff", 10);
const std::string Backend::kTrailerBin = std::string("\x00\xff\x01trailer", 10);

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

StringMultimap Copy(const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
  StringMultimap out;
  for (const auto& [k, v] : md) out.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  return out;
}

StringMultimap Copy(const HeaderList& md) {
  StringMultimap out;
  for (const auto& f : md) out.emplace(f.name, f.value);
  return out;
}

std::vector<std::string> Values(const StringMultimap& md, const std::string& key) {
  std::vector<std::string> out;
  auto [b, e] = md.equal_range(key);
  for (auto it = b; it != e; ++it) out.push_back(it->second);
  return out;
}

bool Eventually(const std::function<bool()>& cond) {
  const auto deadline = std::chrono::steady_clock::now() + kWait;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// ---- Backend ---------------------------------------------------------------

class Backend::Call final : public grpc::ServerGenericBidiReactor {
 public:
  Call(Backend* backend, grpc::GenericCallbackServerContext* ctx) : backend_(backend), ctx_(ctx) {
    const std::string& m = ctx->method();
    name_ = m.substr(m.rfind('/') + 1);
    index_ = backend_->NewRecord(m, Copy(ctx->client_metadata()), ctx->deadline());
    ctx->AddInitialMetadata("x-initial", "i1");
    if (name_ == "Headers") {
      ctx->AddInitialMetadata("x-early", "yes");
      StartSendInitialMetadata();
    }
    if (name_ != "Echo" && name_ != "Collect" && name_ != "Stream" && name_ != "Fail" && name_ != "Hang" && name_ != "Count" &&
        name_ != "Headers") {
      Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "test backend has no method " + m));
      return;
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      std::string msg = Flatten(in_);
      if (name_ != "Count") backend_->Update(index_, [&](BackendCallRecord* r) { r->messages.push_back(msg); });
      received_.push_back(std::move(msg));
    } else if (ctx_->IsCancelled()) {
      // The read failed because the call broke (grpc++ marks the context
      // before OnReadDone): not a half-close.
      backend_->Update(index_, [](BackendCallRecord* r) { r->cancelled = true; });
      return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "backend saw the cancellation"));
    } else {
      backend_->Update(index_, [](BackendCallRecord* r) { r->half_closed = true; });
    }
    if (name_ == "Echo" || name_ == "Headers") {
      if (!ok) return Finish(grpc::Status::OK);
      if (name_ == "Headers" && received_.size() == 1) return StartRead(&in_);  // Swallowed.
      out_ = Buffer(received_.back());
      StartWrite(&out_);
    } else if (name_ == "Collect") {
      if (ok) return StartRead(&in_);
      std::string answer = std::to_string(received_.size()) + ":";
      for (size_t i = 0; i < received_.size(); ++i) answer += (i ? "|" : "") + received_[i];
      out_ = Buffer(answer);
      StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
    } else if (name_ == "Count") {
      if (ok) {
        bytes_ += received_.back().size();
        ++messages_;
        received_.clear();  // Keeps memory flat for large uploads.
        return StartRead(&in_);
      }
      out_ = Buffer(std::to_string(messages_) + " " + std::to_string(bytes_));
      StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
    } else if (name_ == "Stream") {
      if (!ok) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Stream needs a request"));
      std::istringstream in(received_.front());
      in >> count_ >> size_;
      WriteNext();
    } else if (name_ == "Fail") {
      int n = 0;
      auto it = ctx_->client_metadata().find("x-fail-messages");
      if (it != ctx_->client_metadata().end()) n = std::stoi(std::string(it->second.data(), it->second.size()));
      ctx_->AddTrailingMetadata("x-trailer", "t1");
      ctx_->AddTrailingMetadata("x-trailer-bin", kTrailerBin);
      grpc::Status st(grpc::StatusCode::FAILED_PRECONDITION, kFailMessage, kFailDetails);
      if (n > 0) {
        out_ = Buffer("partial");
        StartWriteAndFinish(&out_, grpc::WriteOptions(), st);
      } else {
        Finish(st);
      }
    } else if (name_ == "Hang") {
      // Waits for OnCancel.
    }
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    if (name_ == "Stream") {
      backend_->stream_sent_.fetch_add(1);
      return WriteNext();
    }
    StartRead(&in_);
  }

  void OnCancel() override {
    backend_->Update(index_, [](BackendCallRecord* r) { r->cancelled = true; });
    Finish(grpc::Status(grpc::StatusCode::CANCELLED, "backend saw the cancellation"));
  }

  void OnDone() override { delete this; }

 private:
  // OnCancel runs concurrently with the other reactions; only one finishes.
  void Finish(grpc::Status status) {
    if (!finished_.exchange(true)) grpc::ServerGenericBidiReactor::Finish(std::move(status));
  }
  void StartWriteAndFinish(const grpc::ByteBuffer* msg, grpc::WriteOptions options, grpc::Status status) {
    if (!finished_.exchange(true)) grpc::ServerGenericBidiReactor::StartWriteAndFinish(msg, options, std::move(status));
  }

  void WriteNext() {
    if (written_ == count_) return Finish(grpc::Status::OK);
    out_ = Buffer(std::string(size_, static_cast<char>('a' + written_ % 26)));
    ++written_;
    StartWrite(&out_);
  }

  Backend* const backend_;
  grpc::GenericCallbackServerContext* const ctx_;
  std::string name_;
  size_t index_ = 0;
  grpc::ByteBuffer in_;
  grpc::ByteBuffer out_;
  std::vector<std::string> received_;
  int64_t count_ = 0;
  size_t size_ = 0;
  int64_t written_ = 0;
  int64_t messages_ = 0;
  int64_t bytes_ = 0;
  std::atomic<bool> finished_{false};
};

class Backend::Service final : public grpc::CallbackGenericService {
 public:
  explicit Service(Backend* backend) : backend_(backend) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Call(backend_, ctx);
  }

 private:
  Backend* const backend_;
};

Backend::Backend(const std::string& socket_path) : service_(std::make_unique<Service>(this)) {
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(-1);
  builder.AddListeningPort("unix:" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterCallbackGenericService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_) fail_msg("cannot start the test backend on %s", socket_path.c_str());
}

Backend::~Backend() { server_->Shutdown(std::chrono::system_clock::now()); }

size_t Backend::NewRecord(const std::string& method, StringMultimap metadata,
                          std::chrono::system_clock::time_point deadline) {
  std::lock_guard lock(mu_);
  calls_.push_back(BackendCallRecord{method, std::move(metadata), deadline, {}, false, false});
  return calls_.size() - 1;
}

void Backend::Update(size_t index, const std::function<void(BackendCallRecord*)>& fn) {
  std::lock_guard lock(mu_);
  fn(&calls_[index]);
}

std::vector<BackendCallRecord> Backend::Calls() {
  std::lock_guard lock(mu_);
  return calls_;
}

size_t Backend::CallCount() {
  std::lock_guard lock(mu_);
  return calls_.size();
}

// ---- TestDirector ------------------------------------------------------------

TestDirector::~TestDirector() {
  for (auto& t : threads_) t.join();
}

Status TestDirector::Admit(const CallInfo& call) {
  Seen seen{std::string(call.method), Copy(*call.metadata), std::nullopt};
  std::function<Status(const Seen&)> admit;
  {
    std::lock_guard lock(mu_);
    ++admit_calls_;
    admit = admit_;
  }
  return admit ? admit(seen) : Status::Ok();
}

void TestDirector::set_admit(std::function<Status(const Seen&)> admit) {
  std::lock_guard lock(mu_);
  admit_ = std::move(admit);
}

int TestDirector::admitted_calls() {
  std::lock_guard lock(mu_);
  return admit_calls_;
}

void TestDirector::Direct(const CallInfo& call, Done done) {
  Seen seen{std::string(call.method), Copy(*call.metadata),
            call.first_message ? std::optional<std::string>(std::string(*call.first_message)) : std::nullopt};
  std::unique_lock lock(mu_);
  seen_.push_back(seen);
  if (drop_) return;  // `done` is destroyed unanswered.
  auto answer = [decide = decide_, seen, finalized = finalized_, fmu = finalized_mu_, done = std::move(done)] {
    StatusOr<Route> route = decide(seen);
    if (route.ok()) {
      auto inner = std::move(route->finalizer);
      route->finalizer = [inner, finalized, fmu](const Status& st) {
        {
          std::lock_guard l(*fmu);
          finalized->push_back(grpc::Status(static_cast<grpc::StatusCode>(st.code()), st.message()));
        }
        if (inner) inner(st);
      };
    }
    done(std::move(route));
  };
  if (!async_) {
    lock.unlock();
    answer();
    return;
  }
  threads_.emplace_back([gate = gate_, answer = std::move(answer)] {
    if (gate) gate();
    answer();
  });
}

void TestDirector::set_decide(Decide decide) {
  std::lock_guard lock(mu_);
  decide_ = std::move(decide);
}

void TestDirector::set_async(std::function<void()> gate) {
  std::lock_guard lock(mu_);
  async_ = true;
  gate_ = std::move(gate);
}

void TestDirector::set_drop(bool drop) {
  std::lock_guard lock(mu_);
  drop_ = drop;
}

std::vector<TestDirector::Seen> TestDirector::seen() {
  std::lock_guard lock(mu_);
  return seen_;
}

std::vector<grpc::Status> TestDirector::finalized() {
  std::lock_guard lock(*finalized_mu_);
  return *finalized_;
}

// ---- Fixture -----------------------------------------------------------------

Fixture::Fixture(const Options& options) {
  // Keep grpc initialised across tests: when the last grpc object of a test
  // goes, grpc shuts its threads down, and that sometimes waits 10 s for
  // its timer thread (seen under ASan), which only slows tests down.
  static const bool kGrpcKeptUp = (grpc_init(), true);
  (void)kGrpcKeptUp;
  std::string templ = (std::filesystem::temp_directory_path() / "plane-test-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) fail_msg("mkdtemp failed");
  dir_ = templ;
  backend = std::make_unique<Backend>(dir_ + "/backend.sock");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  backend_channel_ =
      grpc::CreateCustomChannel("unix:" + dir_ + "/backend.sock", grpc::InsecureChannelCredentials(), args);
  auto upstream = std::make_shared<Upstream>();
  upstream->target.kind = ConnectTarget::Kind::kUnix;
  upstream->target.path = dir_ + "/backend.sock";
  upstream->authority = "localhost";
  upstream->label = "test backend";
  backend_upstream_ = upstream;
  director.set_decide([this](const TestDirector::Seen&) -> StatusOr<Route> { return BackendRoute(); });
  ServerOptions so;
  so.loops = 2;
  so.proxy.director = &director;
  so.proxy.max_message_bytes = options.max_message_bytes;
  so.proxy.max_message_hint = options.max_message_hint;
  so.proxy.admitted_window = options.admitted_window;
  so.proxy.forward_high_water = options.forward_high_water;
  so.client_session.initial_stream_window = options.initial_stream_window;
  auto created = Server::Create(so);
  if (!created.ok()) fail_msg("cannot create the data plane: %s", created.status().ToString().c_str());
  server = std::move(*created);
  auto fd = ListenUnix(dir_ + "/proxy.sock");
  if (!fd.ok()) fail_msg("cannot listen: %s", fd.status().ToString().c_str());
  if (!server->AddListener(*fd, "test").ok()) fail_msg("cannot serve on the test socket");
}

void Fixture::ShutdownProxy() { server->Stop(std::chrono::milliseconds(0)); }

Fixture::~Fixture() {
  ShutdownProxy();
  server.reset();
  backend.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::shared_ptr<grpc::Channel> Fixture::BackendChannel() { return backend_channel_; }

std::shared_ptr<grpc::Channel> Fixture::ProxyChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return grpc::CreateCustomChannel("unix:" + dir_ + "/proxy.sock", grpc::InsecureChannelCredentials(), args);
}

Route Fixture::BackendRoute() {
  Route route;
  route.upstream = backend_upstream_;
  route.label = "test backend";
  return route;
}

// ---- BlockingCall --------------------------------------------------------------

BlockingCall::BlockingCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                           const std::function<void(grpc::ClientContext*)>& setup) {
  if (setup) setup(&context_);
  grpc::GenericStub stub(channel);
  stub.PrepareBidiStreamingCall(&context_, method, grpc::StubOptions(), this);
  AddHold();  // Operations are started from the test thread.
  StartCall();
}

BlockingCall::~BlockingCall() {
  if (!done_) {
    context_.TryCancel();
    (void)Finish();
  }
}

bool BlockingCall::Wait(const std::function<bool()>& cond) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, kWait, cond)) fail_msg("a client operation did not complete within %ld s", long(kWait.count()));
  return true;
}

bool BlockingCall::Write(const std::string& bytes) {
  out_ = Buffer(bytes);
  {
    std::lock_guard lock(mu_);
    write_ok_.reset();
  }
  StartWrite(&out_);
  Wait([&] { return write_ok_.has_value(); });
  std::lock_guard lock(mu_);
  return *write_ok_;
}

void BlockingCall::WritesDone() {
  StartWritesDone();
  Wait([&] { return writes_done_; });
}

std::optional<std::string> BlockingCall::Read() {
  {
    std::lock_guard lock(mu_);
    read_ok_.reset();
  }
  StartRead(&in_);
  Wait([&] { return read_ok_.has_value(); });
  bool ok;
  {
    std::lock_guard lock(mu_);
    ok = *read_ok_;
  }
  if (!ok) return std::nullopt;
  return Flatten(in_);
}

bool BlockingCall::WaitForHeaders() {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, kWait, [&] { return headers_; });
}

grpc::Status BlockingCall::Finish() {
  bool release = false;
  {
    std::lock_guard lock(mu_);
    release = !hold_released_;
    hold_released_ = true;
  }
  if (release) RemoveHold();
  Wait([&] { return done_; });
  std::lock_guard lock(mu_);
  return status_;
}

void BlockingCall::OnReadInitialMetadataDone(bool /*ok*/) {
  std::lock_guard lock(mu_);
  headers_ = true;
  cv_.notify_all();
}
void BlockingCall::OnReadDone(bool ok) {
  std::lock_guard lock(mu_);
  read_ok_ = ok;
  cv_.notify_all();
}
void BlockingCall::OnWriteDone(bool ok) {
  std::lock_guard lock(mu_);
  write_ok_ = ok;
  cv_.notify_all();
}
void BlockingCall::OnWritesDoneDone(bool /*ok*/) {
  std::lock_guard lock(mu_);
  writes_done_ = true;
  cv_.notify_all();
}
void BlockingCall::OnDone(const grpc::Status& status) {
  std::lock_guard lock(mu_);
  status_ = status;
  done_ = true;
  cv_.notify_all();
}

CallResult RunCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                   const std::vector<std::string>& requests,
                   const std::function<void(grpc::ClientContext*)>& setup) {
  BlockingCall call(channel, method, setup);
  CallResult result;
  for (const auto& r : requests) {
    if (!call.Write(r)) break;
  }
  call.WritesDone();
  while (auto m = call.Read()) result.responses.push_back(*m);
  result.status = call.Finish();
  result.initial = call.InitialMetadata();
  result.trailing = call.TrailingMetadata();
  return result;
}

}  // namespace praefect::http2::testing
