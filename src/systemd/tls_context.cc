#include "systemd/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>

namespace praefect::systemd {
namespace {

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
             void*) {
  static const unsigned char kH2[] = {2, 'h', '2'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kH2, sizeof kH2, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  // No h2 offered: go on without ALPN; such a client cannot speak gRPC and
  // fails on its own, with its own message.
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

StatusOr<SslCtxPtr> NewServerContext(const TlsFiles& files) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return Internal("TLS: cannot create an OpenSSL context: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // A peer that closes without close_notify is an ordinary end of stream
  // here: HTTP/2 frames its own messages.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx.get(),
                   SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.certificate_path.c_str()) != 1)
    return FailedPrecondition("tls.certificate_path \"" + files.certificate_path +
                              "\": cannot load the certificate: " + OpenSslError() +
                              ": check the path, that praefect's user may read it and that it is PEM");
  if (!files.key.empty()) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(files.key.data(), static_cast<int>(files.key.size())),
                                                  &BIO_free);
    EVP_PKEY* pkey = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
    if (pkey == nullptr || SSL_CTX_use_PrivateKey(ctx.get(), pkey) != 1) {
      EVP_PKEY_free(pkey);
      return FailedPrecondition("tls.key: cannot load the inline key: " + OpenSslError() +
                                ": it must be an unencrypted PEM private key");
    }
    EVP_PKEY_free(pkey);
  } else if (SSL_CTX_use_PrivateKey_file(ctx.get(), files.key_path.c_str(), SSL_FILETYPE_PEM) != 1) {
    return FailedPrecondition("tls.key_path \"" + files.key_path + "\": cannot load the key: " + OpenSslError() +
                              ": check the path, that praefect's user may read it and that it is an unencrypted "
                              "PEM private key");
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return FailedPrecondition("tls: the key does not match the certificate \"" + files.certificate_path +
                              "\": " + OpenSslError() + ": configure the key the certificate was issued for");
  SSL_CTX_set_alpn_select_cb(ctx.get(), SelectH2, nullptr);
  return ctx;
}

}  // namespace praefect::systemd
