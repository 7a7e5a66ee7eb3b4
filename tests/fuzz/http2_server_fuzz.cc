// Fuzzes the data plane's server side with whatever a client could send on
// a connection: HTTP/2 frames (after the connection preface, which the
// target sends so that the fuzzer starts at the frames), HPACK header
// blocks, gRPC message prefixes, resets and half-closes, in any split. The
// bytes go through a ServerSession into real proxy calls, whose Director
// admits, refuses or answers calls by their headers and first messages
// (no upstream: nothing leaves the process). Must never crash, hang, leak
// or hold more than the limits allow (ASan/UBSan/LSan watch).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "http2/event_loop.h"
#include "http2/proxy_call.h"
#include "http2/session.h"
#include "http2/upstream_pool.h"

namespace {

using namespace praefect::http2;

// Admits unless "x-refuse" is sent; answers with the first message, an
// error when the method says so, or a held-open answer (a health Watch).
class FuzzDirector final : public Director {
 public:
  praefect::Status Admit(const CallInfo& call) override {
    if (call.Get("x-refuse")) return praefect::Status(praefect::StatusCode::kUnauthenticated, "refused");
    return praefect::Status::Ok();
  }
  void Direct(const CallInfo& call, Done done) override {
    if (call.method.find("Fail") != std::string_view::npos)
      return done(praefect::Status(praefect::StatusCode::kInvalidArgument, "failing as asked"));
    if (call.method.find("Drop") != std::string_view::npos) return;  // answered INTERNAL when dropped
    Route route;
    route.local_response.emplace(call.first_message.value_or("none"));
    route.keep_open = call.method.find("Watch") != std::string_view::npos;
    route.finalizer = [](const praefect::Status&) {};
    done(std::move(route));
  }
};

class Owner final : public Session::Owner {
 public:
  Owner(EventLoop* loop, const ProxyOptions* options, UpstreamPool* pool)
      : loop_(loop), options_(options), pool_(pool) {}
  void OnNewStream(Stream* stream) override { ProxyCall::Start(loop_, options_, pool_, stream); }
  void OnWantWrite() override {}
  void OnGoAway(int32_t, uint32_t) override {}

 private:
  EventLoop* loop_;
  const ProxyOptions* options_;
  UpstreamPool* pool_;
};

struct World {
  std::unique_ptr<EventLoop> loop;
  Resolver resolver;
  FuzzDirector director;
  ProxyStats stats;
  ProxyOptions options;
  std::unique_ptr<UpstreamPool> pool;
  World() {
    loop = std::move(EventLoop::Create()).value();
    options.director = &director;
    options.stats = &stats;
    options.max_message_bytes = 64 * 1024;
    pool = std::make_unique<UpstreamPool>(loop.get(), &resolver, UpstreamPoolOptions());
  }
};

World& TheWorld() {
  static World* world = new World();  // never destroyed: libFuzzer exits without cleanup
  return *world;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  World& w = TheWorld();
  Owner owner(w.loop.get(), &w.options, w.pool.get());
  SessionOptions session_options;
  session_options.max_header_list_bytes = 4096;
  auto session = std::move(ServerSession::Create(&owner, session_options)).value();
  static const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  // An empty SETTINGS frame: the client's part of the preface.
  static const std::string kSettings("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
  ByteQueue out;
  bool alive = session->Receive(kPreface + kSettings).ok();
  // The first byte picks the chunk size, so that frames split anywhere.
  const size_t chunk = size > 0 ? 1 + data[0] % 64 : 1;
  for (size_t i = 1; alive && i < size; i += chunk) {
    const size_t n = std::min(chunk, size - i);
    // In a block, as a Connection reads: DATA is kept by reference.
    BlockRef block = BlockRef::Take(Block::Adopt(std::string(reinterpret_cast<const char*>(data) + i, n)));
    alive = session->Receive(Slice(block.get(), block->data(), block->used())).ok();
    out.Clear();
    session->Produce(&out, 1 << 20);
    w.loop->RunPending();
  }
  out.Clear();
  session->Produce(&out, 1 << 20);
  w.loop->RunPending();
  session.reset();  // the streams' calls hear the connection's end
  w.loop->RunPending();
  // Every call the input started has ended and let go of its bytes.
  if (w.stats.calls_active.load() != 0 || w.stats.bytes_held.load() != 0) std::abort();
  if (std::getenv("PRAEFECT_FUZZ_DEBUG") != nullptr)
    std::fprintf(stderr, "calls started so far: %lld\n", static_cast<long long>(w.stats.calls_started.load()));
  return 0;
}
