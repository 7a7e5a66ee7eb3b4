#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backchannel/server.h"
#include "http2/buffer.h"
#include "http2/connection.h"
#include "yamux/session.h"

// A node connection with a backchannel, as Praefect v16 dials Gitaly
// (../shared/reference/transactions.md §4): praefect writes the 11 bytes
// "backchannel", then runs a yamux session as its client. praefect's own
// HTTP/2 (the proxied calls) runs on the first stream it opens; every stream
// the node opens back is a connection to praefect's backchannel Server
// (RefTransaction: the node's votes), bridged through a socketpair.
//
// A SecureLayer (http2/connection.h): the Connection moves the socket's bytes
// through it; what it calls plaintext is the first stream's bytes. Not
// thread-safe: on its connection's loop only.
namespace praefect::backchannel {

inline constexpr std::string_view kMagic = "backchannel";

class ClientLayer final : public http2::SecureLayer, private yamux::SessionListener {
 public:
  // `server` must outlive the layer. `options.role` is set here (client).
  static StatusOr<std::unique_ptr<ClientLayer>> Create(Server* server, yamux::SessionOptions options);
  ~ClientLayer() override;
  ClientLayer(const ClientLayer&) = delete;
  ClientLayer& operator=(const ClientLayer&) = delete;

  // http2::SecureLayer.
  Status ReceiveCiphertext(std::string_view bytes) override;
  Status ReadPlaintext(std::string* out) override;
  Status SendPlaintext(std::string_view bytes) override;
  void TakeCiphertext(std::string* out) override;
  Status ReceiveEof() override;
  size_t buffered() const override;
  bool peer_closed() const override { return main_closed_; }
  bool handshake_done() const override { return true; }
  std::string_view alpn() const override { return "h2"; }
  void Attach(http2::Connection* connection) override { connection_ = connection; }
  // The first stream's bytes are handed on as parts of the block they were
  // read into: no copy (yamux frames them, it does not transform them).
  bool passes_slices() const override { return true; }
  Status ReceiveSlices(const http2::Slice& bytes, std::vector<http2::Slice>* plain) override;

  // For the bridges (client_layer.cc): bytes from the backchannel server
  // for stream `id` (how many the stream took: the rest waits for its
  // window), its end, and a flush of what they produced.
  size_t WriteStream(uint32_t id, std::string_view bytes);
  void CloseStream(uint32_t id);
  void ResetStream(uint32_t id);
  void Flush();
  void Forget(uint32_t id);  // the bridge of stream `id` is done

 private:
  class Bridge;
  ClientLayer(Server* server, std::unique_ptr<yamux::Session> session);

  // yamux::SessionListener.
  void OnStreamOpened(uint32_t id) override;
  void OnData(uint32_t id, std::string_view bytes) override;
  void OnPeerClosed(uint32_t id) override;
  void OnStreamReset(uint32_t id) override;
  void OnWritable(uint32_t id) override;
  void OnGoAway(uint32_t code) override;
  void OnError(const Status& error) override;

  // Moves what the HTTP/2 session sent into the first stream, as its window
  // allows.
  void Pump();

  Server* const server_;
  std::unique_ptr<yamux::Session> session_;
  http2::Connection* connection_ = nullptr;
  uint32_t main_ = 0;       // the first stream: praefect's HTTP/2
  bool magic_sent_ = false;
  bool main_closed_ = false;
  std::string plain_;       // received on the first stream, not yet read
  // During ReceiveSlices: the bytes being parsed and where their plaintext
  // parts go.
  const http2::Slice* in_place_ = nullptr;
  std::vector<http2::Slice>* in_place_out_ = nullptr;
  std::string pending_;     // for the first stream, beyond its window
  Status error_;
  std::map<uint32_t, std::unique_ptr<Bridge>> bridges_;
};

}  // namespace praefect::backchannel
