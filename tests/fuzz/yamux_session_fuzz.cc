// libFuzzer target for src/yamux's Session: arbitrary bytes as what the
// peer sends on a backchannel connection, in any split, with an owner that
// acts on what it hears (accepts, answers, consumes, closes, resets).
//
// Input layout: byte 0 chooses the session and the owner:
//   bit 0  role: 0 server (the peer opens odd ids), 1 client
//   bit 1  accept the peer's streams at once (else leave them waiting)
//   bit 2  consume data at once (else never: the window must hold)
//   bit 3  accept backlog 1 (else 256)
//   bit 4  maximum window 1 MiB (else 256 KiB)
//   bit 5  open one stream of our own first, so that ACKs can match it
// byte 1 cuts the rest into reads of 1 + byte1 * 16 bytes (0: one read).
// Invariants, checked with abort():
//  * no crash, leak or out-of-bounds access (ASan, UBSan);
//  * Receive returns OK or UNAVAILABLE with a message naming the session;
//    once it failed, every call returns that same Status, and OnError was
//    called exactly once;
//  * what the session sends is whole, valid frames (version 0, a known
//    type and flags), and after a protocol error it ends with
//    GoAway(protocol error).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "yamux/frame.h"
#include "yamux/session.h"
#include "fuzz_check.h"

namespace {

using praefect::Status;
using praefect::StatusCode;
using namespace praefect::yamux;

class Owner final : public SessionListener {
 public:
  Session* session = nullptr;
  bool accept = false;
  bool consume = false;
  int errors = 0;
  unsigned data_calls = 0;

  void OnStreamOpened(uint32_t id) override {
    if (accept) (void)session->Accept(id);
  }
  void OnData(uint32_t id, std::string_view bytes) override {
    ++data_calls;
    if (consume) (void)session->Consume(id, bytes.size());
    // Act on some of the data: answer, half-close, reset.
    switch (data_calls % 7) {
      case 1:
        (void)session->Write(id, bytes.substr(0, 100));
        break;
      case 3:
        (void)session->Close(id);
        break;
      case 5:
        (void)session->Reset(id);
        break;
      default:
        break;
    }
  }
  void OnPeerClosed(uint32_t id) override { (void)session->Close(id); }
  void OnWritable(uint32_t id) override { (void)session->Write(id, "more"); }
  void OnGoAway(uint32_t) override { (void)session->Ping(); }
  void OnError(const Status& error) override {
    ++errors;
    FUZZ_CHECK(error.code() == StatusCode::kUnavailable);
    FUZZ_CHECK(error.message().rfind("yamux session with fuzz: ", 0) == 0);
  }
};

// Checks that `out` is whole, valid frames; returns the last header.
FrameHeader CheckFrames(std::string_view out) {
  FrameHeader last;
  while (!out.empty()) {
    FUZZ_CHECK(out.size() >= kHeaderSize);
    last = DecodeHeader(out.data());
    FUZZ_CHECK(last.version == kProtocolVersion);
    FUZZ_CHECK(last.type <= static_cast<uint8_t>(FrameType::kGoAway));
    FUZZ_CHECK((last.flags & ~kKnownFlags) == 0);
    size_t size = kHeaderSize;
    if (last.type == static_cast<uint8_t>(FrameType::kData)) size += last.length;
    FUZZ_CHECK(out.size() >= size);
    out.remove_prefix(size);
  }
  return last;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t mode = data[0];
  const size_t piece = data[1] == 0 ? size : 1 + size_t{data[1]} * 16;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 2, size - 2);

  SessionOptions options;
  options.role = (mode & 1) ? Role::kClient : Role::kServer;
  options.accept_backlog = (mode & 8) ? 1 : 256;
  options.max_stream_window = (mode & 16) ? 1 << 20 : kInitialStreamWindow;
  options.peer = "fuzz";
  Owner owner;
  owner.accept = (mode & 2) != 0;
  owner.consume = (mode & 4) != 0;
  auto created = Session::Create(options, &owner);
  FUZZ_CHECK(created.ok());
  std::unique_ptr<Session> session = std::move(created).value();
  owner.session = session.get();
  if (mode & 32) FUZZ_CHECK(session->Open().ok());

  std::string out;
  Status st;
  while (!bytes.empty()) {
    const std::string_view chunk = bytes.substr(0, piece);
    bytes.remove_prefix(chunk.size());
    st = session->Receive(chunk);
    FUZZ_CHECK(st.ok() || st.code() == StatusCode::kUnavailable);
    session->TakeOutput(&out);
    if (!st.ok()) break;
  }
  if (!st.ok()) {
    // Sticky, and told once.
    FUZZ_CHECK(session->Receive("x").message() == st.message());
    FUZZ_CHECK(session->ReceiveEof().message() == st.message());
    FUZZ_CHECK(session->Open().status().message() == st.message());
    FUZZ_CHECK(session->Write(1, "x").status().message() == st.message());
    FUZZ_CHECK(owner.errors == 1);
    const FrameHeader last = CheckFrames(out);
    if (st.message().find(": protocol error: ") != std::string::npos) {
      FUZZ_CHECK(last.type == static_cast<uint8_t>(FrameType::kGoAway) &&
                 last.length == static_cast<uint32_t>(GoAwayCode::kProtocolError));
    }
  } else {
    FUZZ_CHECK(owner.errors == 0);
    CheckFrames(out);
    FUZZ_CHECK(!session->ReceiveEof().ok());
    FUZZ_CHECK(owner.errors == 1);
  }
  return 0;
}
