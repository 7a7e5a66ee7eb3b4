#include "http2/tls_layer.h"

namespace praefect::http2 {
namespace {

class TlsSecureLayer final : public SecureLayer {
 public:
  explicit TlsSecureLayer(std::unique_ptr<TlsFilter> filter) : filter_(std::move(filter)) {}
  Status ReceiveCiphertext(std::string_view bytes) override { return filter_->ReceiveCiphertext(bytes); }
  Status ReadPlaintext(std::string* out) override { return filter_->ReadPlaintext(out); }
  Status SendPlaintext(std::string_view bytes) override { return filter_->SendPlaintext(bytes); }
  void TakeCiphertext(std::string* out) override { filter_->TakeCiphertext(out); }
  Status ReceiveEof() override { return filter_->ReceiveEof(); }
  size_t buffered() const override { return filter_->held_plaintext_size() + filter_->ciphertext_size(); }
  bool peer_closed() const override { return filter_->peer_closed(); }
  bool handshake_done() const override { return filter_->handshake_done(); }
  std::string_view alpn() const override { return filter_->alpn(); }

 private:
  std::unique_ptr<TlsFilter> filter_;
};

}  // namespace

std::unique_ptr<SecureLayer> ServerTls(std::shared_ptr<const TlsContext> context, std::string peer) {
  return std::make_unique<TlsSecureLayer>(TlsFilter::ForServer(std::move(context), std::move(peer)));
}

std::unique_ptr<SecureLayer> ClientTls(std::shared_ptr<const TlsContext> context, std::string server_name,
                                       std::string peer) {
  return std::make_unique<TlsSecureLayer>(
      TlsFilter::ForClient(std::move(context), std::move(server_name), std::move(peer)));
}

}  // namespace praefect::http2
