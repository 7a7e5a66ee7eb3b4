// The backchannel's client layer as the Connection drives it: the first
// stream's bytes are handed on in place (parts of the block they were read
// into, never copied), whatever the read boundaries; what praefect sends
// goes into Data frames as far as the node's window allows, the rest later.
#include "backchannel/client_layer.h"

#include <cstring>
#include <string>
#include <vector>

#include "http2/buffer.h"
#include "test_support.h"
#include "yamux/frame.h"

using praefect::backchannel::ClientLayer;
using praefect::http2::Block;
using praefect::http2::BlockRef;
using praefect::http2::Slice;
using praefect::yamux::AppendHeader;
using praefect::yamux::FrameType;

namespace {

std::unique_ptr<ClientLayer> NewLayer() {
  auto layer = ClientLayer::Create(nullptr, praefect::yamux::SessionOptions{});
  assert_status_ok(layer.status());
  return std::move(*layer);
}

// What the node sends: the ACK of praefect's stream 1, then `payload` in
// Data frames of `frame` bytes.
std::string NodeBytes(const std::string& payload, size_t frame) {
  std::string out;
  AppendHeader(FrameType::kWindowUpdate, praefect::yamux::kFlagAck, 1, 0, &out);
  for (size_t at = 0; at < payload.size(); at += frame) {
    const size_t n = std::min(frame, payload.size() - at);
    AppendHeader(FrameType::kData, 0, 1, static_cast<uint32_t>(n), &out);
    out.append(payload, at, n);
  }
  return out;
}

// Feeds `wire` in reads of `read` bytes, each in a block of its own; returns
// the plaintext and checks that every part lies inside its read's block.
std::string ReceiveInReads(ClientLayer& layer, const std::string& wire, size_t read) {
  std::string plain;
  for (size_t at = 0; at < wire.size(); at += read) {
    const size_t n = std::min(read, wire.size() - at);
    BlockRef block = BlockRef::Take(Block::New(n));
    std::memcpy(block->tail(), wire.data() + at, n);
    Slice got(block.get(), block->tail(), n);
    block->Commit(n);
    std::vector<Slice> parts;
    assert_status_ok(layer.ReceiveSlices(got, &parts));
    for (const Slice& part : parts) {
      expect_that(part.block() == block.get() && block->Contains(part.data(), part.size()),
                  "each part of the plaintext is inside the block read (no copy)");
      plain.append(part.view());
    }
    std::string copied;
    assert_status_ok(layer.ReadPlaintext(&copied));
    expect_that(copied.empty(), "nothing went through the copying path");
  }
  return plain;
}

void PlaintextPassedInPlace(void**) {
  std::string payload;
  for (int i = 0; payload.size() < 100000; ++i) payload += "frame bytes " + std::to_string(i) + "\n";
  for (size_t frame : {size_t{1}, size_t{7}, size_t{4096}, size_t{16384}}) {
    const std::string wire = NodeBytes(payload.substr(0, frame == 1 ? 3000 : payload.size()), frame);
    for (size_t read : {size_t{1}, size_t{5}, size_t{12}, size_t{13}, size_t{1000}, size_t{65536}}) {
      auto layer = NewLayer();
      const std::string got = ReceiveInReads(*layer, wire, read);
      expect_that(got == payload.substr(0, frame == 1 ? 3000 : payload.size()),
                  "the stream's bytes in order with frames of " + std::to_string(frame) + " and reads of " +
                      std::to_string(read));
    }
  }
}

void SendsIntoTheWindowThenWaits(void**) {
  auto layer = NewLayer();
  std::string out;
  layer->TakeCiphertext(&out);  // "backchannel" and the SYN of stream 1
  expect_that(out.rfind("backchannel", 0) == 0, "the magic first");
  // 300 KiB against the 256 KiB initial window: the rest waits.
  const std::string big(300 * 1024, 'x');
  assert_status_ok(layer->SendPlaintext(big));
  out.clear();
  layer->TakeCiphertext(&out);
  expect_that(out.size() < big.size(), "only the window's worth went out");
  expect_that(layer->buffered() > 0, "the rest is held");
  // The node opens the window: the rest goes.
  std::string update;
  AppendHeader(FrameType::kWindowUpdate, praefect::yamux::kFlagAck, 1, 256 * 1024, &update);
  BlockRef block = BlockRef::Take(Block::New(update.size()));
  std::memcpy(block->tail(), update.data(), update.size());
  Slice got(block.get(), block->tail(), update.size());
  block->Commit(update.size());
  std::vector<Slice> parts;
  assert_status_ok(layer->ReceiveSlices(got, &parts));
  std::string more;
  layer->TakeCiphertext(&more);
  size_t data = 0;
  for (const std::string* wire : {&out, &more}) {
    // Count the payload of the Data frames (the magic went out before).
    size_t at = 0;
    while (at + 12 <= wire->size()) {
      const auto* h = reinterpret_cast<const unsigned char*>(wire->data() + at);
      const uint32_t length = (uint32_t{h[8]} << 24) | (uint32_t{h[9]} << 16) | (uint32_t{h[10]} << 8) | h[11];
      at += 12;
      if (h[1] == 0) {
        data += length;
        at += length;
      }
    }
  }
  expect_that(data == big.size(), "every byte sent once the window opened, got " + std::to_string(data));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(PlaintextPassedInPlace),
      cmocka_unit_test(SendsIntoTheWindowThenWaits),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
