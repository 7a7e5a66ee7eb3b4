// grpc_load: a small Gitaly load generator for bench/run.
//
//   grpc_load --target HOST:PORT --storage NAME --path REL [--token SECRET]
//             --mode exists|ref|writeref|blob|create [--concurrency N]
//             [--duration S] [--warmup S] [--calls C] [--oid OID] [--oid2 OID]
//             [--ref REF] [--repeat R] [--ca PEM]
//
// exists: RepositoryService/RepositoryExists, N calls in flight for S
//         seconds (callback API, one channel) → calls/s, p50/p99 latency.
//         With --calls C: exactly C calls (no warm-up, no deadline), for a
//         fixed workload under callgrind.
// ref:    the same with RefService/RefExists.
// writeref: the same with RepositoryService/WriteRef, a mutator (a
//         reference transaction through praefect): each of the N slots
//         moves its own ref (REF-<slot>) to OID, then OID2, then OID... so
//         that every call changes a ref.
// create: one RepositoryService/CreateRepository of PATH.
// blob:   BlobService/GetBlob of OID, R times, N streams at once →
//         MiB/s; every byte is counted and the total checked against the
//         size the server announced.
// --ca PEM: TLS, trusting the certificates in PEM (bench/tls_bridge).
// Prints one line of key=value pairs (bench/run parses it), including the
// CPU time the client process spent. Exit status 1 when any call failed.
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "auth/token.h"
#include "blob.grpc.pb.h"
#include "ref.grpc.pb.h"
#include "repository-service.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string target, storage, path, token, mode;
  std::string ca;  // TLS root certificates (a file); empty: plaintext
  std::string oid, oid2, ref = "refs/heads/main";
  int concurrency = 16;
  double duration = 5, warmup = 0.5;
  int repeat = 1;
  long calls = 0;  // > 0: a fixed number of unary calls instead of a duration
};

int Usage(const char* why) {
  std::fprintf(stderr,
               "grpc_load: %s\nusage: grpc_load --target HOST:PORT --storage NAME --path REL "
               "--mode exists|ref|writeref|blob|create [--token SECRET] [--concurrency N] [--duration S] "
               "[--warmup S] [--calls C] [--oid OID] [--oid2 OID] [--ref REF] [--repeat R] [--ca PEM]\n",
               why);
  return 2;
}

bool Parse(int argc, char** argv, Options* o) {
  std::map<std::string, std::string> kv;
  for (int i = 1; i + 1 < argc; i += 2) kv[argv[i]] = argv[i + 1];
  if (argc % 2 == 0) return false;
  auto take = [&](const char* key, std::string* out) {
    if (auto it = kv.find(key); it != kv.end()) *out = it->second, kv.erase(it);
  };
  std::string n, d, w, r, c;
  take("--target", &o->target);
  take("--storage", &o->storage);
  take("--path", &o->path);
  take("--token", &o->token);
  take("--mode", &o->mode);
  take("--oid", &o->oid);
  take("--oid2", &o->oid2);
  take("--ref", &o->ref);
  take("--concurrency", &n);
  take("--duration", &d);
  take("--warmup", &w);
  take("--repeat", &r);
  take("--calls", &c);
  take("--ca", &o->ca);
  if (!kv.empty()) return false;
  if (!n.empty()) o->concurrency = std::atoi(n.c_str());
  if (!d.empty()) o->duration = std::atof(d.c_str());
  if (!w.empty()) o->warmup = std::atof(w.c_str());
  if (!r.empty()) o->repeat = std::atoi(r.c_str());
  if (!c.empty()) o->calls = std::atol(c.c_str());
  if (o->calls > 0) o->warmup = 0;
  if (o->target.rfind("tcp://", 0) == 0) o->target = o->target.substr(6);
  return !o->target.empty() && !o->storage.empty() && !o->path.empty() && o->concurrency > 0 &&
         o->duration > 0 && o->repeat > 0 && o->calls >= 0 &&
         (o->mode == "exists" || o->mode == "ref" || o->mode == "writeref" || o->mode == "blob" ||
          o->mode == "create") &&
         ((o->mode != "blob" && o->mode != "writeref") || !o->oid.empty());
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

void Authorize(const Options& o, grpc::ClientContext* ctx) {
  if (!o.token.empty())
    ctx->AddMetadata(std::string(praefect::auth::kAuthorizationMetadataKey),
                     praefect::auth::BearerV2(o.token, std::chrono::system_clock::now()));
}

void FillRepository(const Options& o, gitaly::Repository* repo) {
  repo->set_storage_name(o.storage);
  repo->set_relative_path(o.path);
}

// One unary call in flight per slot; a slot starts its next call from the
// completion callback of the previous one until the deadline. A slot's state
// is only touched by its own (sequential) calls, so it needs no lock.
class UnaryLoad {
 public:
  UnaryLoad(const Options& o, std::shared_ptr<grpc::Channel> channel)
      : o_(o),
        repo_stub_(gitaly::RepositoryService::NewStub(channel)),
        ref_stub_(gitaly::RefService::NewStub(channel)),
        slots_(static_cast<size_t>(o.concurrency)) {}

  int Run() {
    start_ = Clock::now();
    measure_from_ = start_ + ToDuration(o_.warmup);
    end_ = measure_from_ + ToDuration(o_.duration);
    double cpu0 = 0;
    if (o_.calls > 0) end_ = Clock::time_point::max();
    int starting = 0;
    std::vector<Slot*> first;
    for (auto& s : slots_)
      if (Claim()) first.push_back(&s), ++starting;
    active_ = starting;
    for (Slot* s : first) Start(s);
    std::this_thread::sleep_until(measure_from_);
    cpu0 = CpuSeconds();
    {
      std::unique_lock lock(mu_);
      done_cv_.wait(lock, [&] { return active_ == 0; });
    }
    double cpu = CpuSeconds() - cpu0;
    std::vector<uint32_t> all;
    long errors = 0;
    for (auto& s : slots_) {
      all.insert(all.end(), s.latencies_us.begin(), s.latencies_us.end());
      errors += s.errors;
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
      return all.empty() ? 0u : all[std::min(all.size() - 1, static_cast<size_t>(p * static_cast<double>(all.size())))];
    };
    // all_calls counts the warm-up too: what the server side did during
    // the whole run, for bench/run's per-call CPU of the proxy.
    double measured = std::chrono::duration<double>(std::min(end_, Clock::now()) - measure_from_).count();
    std::printf(
        "mode=%s calls=%zu all_calls=%ld calls_per_s=%.1f p50_us=%u p99_us=%u errors=%ld cpu_us_per_call=%.1f\n",
        o_.mode.c_str(), all.size(), all_calls_.load(), static_cast<double>(all.size()) / measured, pct(0.50),
        pct(0.99), errors, all.empty() ? 0.0 : cpu * 1e6 / static_cast<double>(all.size()));
    if (errors > 0) std::fprintf(stderr, "grpc_load: %ld calls failed; first: %s\n", errors, first_error_.c_str());
    return errors > 0 || all.empty() ? 1 : 0;
  }

 private:
  struct Slot {
    std::unique_ptr<grpc::ClientContext> ctx;
    gitaly::RepositoryExistsRequest exists_req;
    gitaly::RepositoryExistsResponse exists_resp;
    gitaly::RefExistsRequest ref_req;
    gitaly::RefExistsResponse ref_resp;
    gitaly::WriteRefRequest write_req;
    gitaly::WriteRefResponse write_resp;
    std::string own_ref;
    uint64_t writes = 0;
    Clock::time_point started;
    std::vector<uint32_t> latencies_us;
    long errors = 0;
  };

  static Clock::duration ToDuration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

  // With --calls, a slot starts a call only while calls remain to start.
  bool Claim() { return o_.calls == 0 || started_.fetch_add(1) < o_.calls; }

  void Start(Slot* s) {
    s->ctx = std::make_unique<grpc::ClientContext>();
    s->ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    Authorize(o_, s->ctx.get());
    s->started = Clock::now();
    auto done = [this, s](grpc::Status st) { Finished(s, st); };
    if (o_.mode == "exists") {
      FillRepository(o_, s->exists_req.mutable_repository());
      repo_stub_->async()->RepositoryExists(s->ctx.get(), &s->exists_req, &s->exists_resp, done);
    } else if (o_.mode == "writeref") {
      if (s->own_ref.empty()) s->own_ref = o_.ref + "-" + std::to_string(s - slots_.data());
      FillRepository(o_, s->write_req.mutable_repository());
      s->write_req.set_ref(s->own_ref);
      s->write_req.set_revision(s->writes++ % 2 == 1 && !o_.oid2.empty() ? o_.oid2 : o_.oid);
      repo_stub_->async()->WriteRef(s->ctx.get(), &s->write_req, &s->write_resp, done);
    } else {
      FillRepository(o_, s->ref_req.mutable_repository());
      s->ref_req.set_ref(o_.ref);
      ref_stub_->async()->RefExists(s->ctx.get(), &s->ref_req, &s->ref_resp, done);
    }
  }

  void Finished(Slot* s, const grpc::Status& st) {
    auto now = Clock::now();
    ++all_calls_;
    bool ok = st.ok() && (o_.mode == "exists"     ? s->exists_resp.exists()
                          : o_.mode == "writeref" ? true
                                                  : s->ref_resp.value());
    if (s->started >= measure_from_ && now <= end_) {
      if (ok) {
        s->latencies_us.push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - s->started).count()));
      }
    }
    if (!ok) {
      ++s->errors;
      std::lock_guard lock(mu_);
      if (first_error_.empty())
        first_error_ = st.ok() ? "the repository or ref does not exist" : st.error_message();
    }
    if (now < end_ && ok && Claim()) {
      Start(s);
      return;
    }
    std::lock_guard lock(mu_);
    if (--active_ == 0) done_cv_.notify_all();
  }

  const Options& o_;
  std::unique_ptr<gitaly::RepositoryService::Stub> repo_stub_;
  std::unique_ptr<gitaly::RefService::Stub> ref_stub_;
  std::vector<Slot> slots_;
  Clock::time_point start_, measure_from_, end_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::atomic<long> all_calls_{0};
  std::atomic<long> started_{0};
  int active_ = 0;            // GUARDED_BY(mu_)
  std::string first_error_;   // GUARDED_BY(mu_)
};

// GetBlob R times over `concurrency` threads, each reading whole streams.
int RunBlob(const Options& o, std::shared_ptr<grpc::Channel> channel) {
  auto stub = gitaly::BlobService::NewStub(channel);
  std::atomic<int> next{0};
  std::atomic<long long> bytes{0};
  std::atomic<long> errors{0};
  std::mutex mu;
  std::string first_error;
  auto worker = [&] {
    while (next.fetch_add(1) < o.repeat) {
      grpc::ClientContext ctx;
      Authorize(o, &ctx);
      gitaly::GetBlobRequest req;
      FillRepository(o, req.mutable_repository());
      req.set_oid(o.oid);
      req.set_limit(-1);
      auto reader = stub->GetBlob(&ctx, req);
      gitaly::GetBlobResponse msg;
      long long size = -1, got = 0;
      while (reader->Read(&msg)) {
        if (size < 0) size = msg.size();
        got += static_cast<long long>(msg.data().size());
      }
      grpc::Status st = reader->Finish();
      std::string err = !st.ok() ? st.error_message()
                        : size <= 0 ? "blob not found"
                        : got != size ? "short blob: " + std::to_string(got) + " of " + std::to_string(size) + " bytes"
                                      : "";
      bytes += got;
      if (!err.empty()) {
        ++errors;
        std::lock_guard lock(mu);
        if (first_error.empty()) first_error = err;
      }
    }
  };
  double cpu0 = CpuSeconds();
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < o.concurrency; ++i) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = CpuSeconds() - cpu0;
  double mib = static_cast<double>(bytes.load()) / (1024.0 * 1024.0);
  std::printf("mode=blob calls=%d mib=%.1f seconds=%.3f mib_per_s=%.1f errors=%ld cpu_s=%.3f cpu_ms_per_gib=%.1f\n",
              o.repeat, mib, secs, mib / secs, errors.load(), cpu, mib > 0 ? cpu * 1e3 * 1024.0 / mib : 0.0);
  if (errors > 0) std::fprintf(stderr, "grpc_load: %ld calls failed; first: %s\n", errors.load(), first_error.c_str());
  return errors > 0 ? 1 : 0;
}

int RunCreate(const Options& o, std::shared_ptr<grpc::Channel> channel) {
  auto stub = gitaly::RepositoryService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  Authorize(o, &ctx);
  gitaly::CreateRepositoryRequest req;
  FillRepository(o, req.mutable_repository());
  gitaly::CreateRepositoryResponse resp;
  grpc::Status st = stub->CreateRepository(&ctx, req, &resp);
  if (!st.ok()) {
    std::fprintf(stderr, "grpc_load: CreateRepository %s: %s\n", o.path.c_str(), st.error_message().c_str());
    return 1;
  }
  std::printf("mode=create created=%s\n", o.path.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!Parse(argc, argv, &o)) return Usage("bad or missing arguments");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  if (!o.ca.empty()) {
    std::ifstream in(o.ca);
    std::stringstream pem;
    pem << in.rdbuf();
    if (!in || pem.str().empty()) {
      std::fprintf(stderr, "grpc_load: cannot read --ca %s\n", o.ca.c_str());
      return 2;
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pem.str();
    creds = grpc::SslCredentials(ssl);
  }
  auto channel = grpc::CreateCustomChannel(o.target, creds, args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "grpc_load: cannot connect to %s within 10 s\n", o.target.c_str());
    return 1;
  }
  if (o.mode == "blob") return RunBlob(o, channel);
  if (o.mode == "create") return RunCreate(o, channel);
  UnaryLoad load(o, channel);
  return load.Run();
}
