#include "http2/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "http2/pem.h"

namespace praefect::http2 {
namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// ALPN's wire form: a length byte, then the name.
constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};

int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in, unsigned int inlen,
             void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnH2, sizeof kAlpnH2, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  // No h2 offered: go on without ALPN. Such a client cannot speak gRPC and
  // fails on its own, with its own message, which says more to its operator
  // than a no_application_protocol alert would.
  return SSL_TLSEXT_ERR_NOACK;
}

StatusOr<SslCtxPtr> NewContext(const SSL_METHOD* method) {
  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(method));
  if (!ctx) {
    return Internal("TLS: cannot create an OpenSSL context (OpenSSL: " + DrainOpenSslErrors() +
                    "): praefect is probably out of memory");
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // A peer that closes without close_notify is an ordinary end of stream:
  // HTTP/2 frames its own messages and notices a truncated one.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  // Idle connections give back their record buffers (about 34 KiB each).
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

// Installs the certificate chain and key of `files` in `ctx`.
Status UseCertificate(SSL_CTX* ctx, const TlsFiles& files) {
  const std::string name = files.config_name + ".certificate_path";
  StatusOr<std::vector<X509Ptr>> chain = ReadCertificates(files.certificate_path, name);
  if (!chain.ok()) return chain.status();
  StatusOr<EvpPkeyPtr> key = ReadPrivateKey(files);
  if (!key.ok()) return key.status();
  const std::string setting = Setting(name, files.certificate_path);
  ERR_clear_error();
  if (SSL_CTX_use_certificate(ctx, chain->front().get()) != 1) {
    // OpenSSL's security level refuses weak keys and signatures.
    return FailedPrecondition(setting + ": OpenSSL refuses the certificate (" + DrainOpenSslErrors() +
                              "): issue one with a key of at least 2048 bits (RSA) or an EC key, signed with SHA-256 "
                              "or better");
  }
  for (size_t i = 1; i < chain->size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, (*chain)[i].get()) != 1) {
      return FailedPrecondition(setting + ": OpenSSL refuses certificate " + std::to_string(i + 1) + " of the chain (" +
                                DrainOpenSslErrors() + "): check the chain in the file");
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, key->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return FailedPrecondition(KeySetting(files) + ": the key does not match the certificate of " + setting +
                              ": " + KeyMismatchAdvice(files));
  }
  return Status::Ok();
}

}  // namespace

TlsContext::TlsContext(ssl_ctx_st* ctx, bool server, std::string trust)
    : ctx_(ctx), server_(server), trust_(std::move(trust)) {}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Server(const TlsFiles& files) {
  StatusOr<SslCtxPtr> ctx = NewContext(TLS_server_method());
  if (!ctx.ok()) return ctx.status();
  if (Status st = UseCertificate(ctx->get(), files); !st.ok()) return st;
  SSL_CTX_set_alpn_select_cb(ctx->get(), SelectH2, nullptr);
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx->release(), /*server=*/true, ""));
}

StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Client(const ClientOptions& options) {
  StatusOr<SslCtxPtr> ctx = NewContext(TLS_client_method());
  if (!ctx.ok()) return ctx.status();
  SSL_CTX_set_verify(ctx->get(), SSL_VERIFY_PEER, nullptr);
  std::string trust;
  if (options.ca_file.empty()) {
    // Reads SSL_CERT_FILE / SSL_CERT_DIR when set, else the system's store;
    // a missing store is not an error here: verification then fails, and
    // says which CAs praefect trusts.
    SSL_CTX_set_default_verify_paths(ctx->get());
    ERR_clear_error();
    trust = "the system's trust store (or the files named by SSL_CERT_FILE / SSL_CERT_DIR when set)";
  } else {
    StatusOr<std::vector<X509Ptr>> cas = ReadCertificates(options.ca_file, "CA file");
    if (!cas.ok()) return cas.status();
    X509_STORE* store = SSL_CTX_get_cert_store(ctx->get());
    for (const X509Ptr& ca : *cas) {
      if (X509_STORE_add_cert(store, ca.get()) != 1) {
        return FailedPrecondition(Setting("CA file", options.ca_file) + ": OpenSSL refuses a certificate of it (" +
                                  DrainOpenSslErrors() + ")");
      }
    }
    trust = Setting("the CA file", options.ca_file);
  }
  // Unlike most of OpenSSL, 0 is success here.
  if (SSL_CTX_set_alpn_protos(ctx->get(), kAlpnH2, sizeof kAlpnH2) != 0) {
    return Internal("TLS: cannot offer ALPN h2 (OpenSSL: " + DrainOpenSslErrors() + ")");
  }
  if (!options.client_certificate.certificate_path.empty()) {
    if (Status st = UseCertificate(ctx->get(), options.client_certificate); !st.ok()) return st;
  }
  return std::shared_ptr<const TlsContext>(new TlsContext(ctx->release(), /*server=*/false, std::move(trust)));
}

}  // namespace praefect::http2
