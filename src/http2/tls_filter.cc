#include "http2/tls_filter.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cassert>
#include <cstring>
#include <new>

#include "common/quote.h"
#include "http2/pem.h"
#include "http2/tls_failure.h"

namespace praefect::http2 {

// The BIO under each filter's SSL: reads take the bytes of the current
// ReceiveCiphertext call in place; writes append to the filter's ciphertext
// buffer and always succeed. OpenSSL keeps a partial record in its own
// buffer, so nothing read has to outlive the call.
struct WireBio {
  static BIO_METHOD* Method() {
    // Created once, shared by every filter, never freed.
    static BIO_METHOD* const method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "praefect TlsFilter");
      if (m != nullptr) {
        BIO_meth_set_write_ex(m, Write);
        BIO_meth_set_read_ex(m, Read);
        BIO_meth_set_ctrl(m, Ctrl);
      }
      return m;
    }();
    return method;
  }

  static TlsFilter::Wire* WireOf(BIO* bio) { return static_cast<TlsFilter::Wire*>(BIO_get_data(bio)); }

  static int Write(BIO* bio, const char* data, size_t size, size_t* written) {
    BIO_clear_retry_flags(bio);
    try {
      WireOf(bio)->outgoing.append(data, size);
    } catch (const std::bad_alloc&) {
      return 0;  // No exception through OpenSSL: the write fails instead.
    }
    *written = size;
    return 1;
  }

  static int Read(BIO* bio, char* data, size_t size, size_t* read) {
    BIO_clear_retry_flags(bio);
    TlsFilter::Wire* wire = WireOf(bio);
    *read = 0;
    if (wire->incoming.empty()) {
      // Nothing now: come back with more. After ReceiveEof: end of file.
      if (!wire->incoming_eof) BIO_set_retry_read(bio);
      return 0;
    }
    const size_t n = std::min(size, wire->incoming.size());
    std::memcpy(data, wire->incoming.data(), n);
    wire->incoming.remove_prefix(n);
    *read = n;
    return 1;
  }

  static long Ctrl(BIO* bio, int cmd, long, void*) {
    const TlsFilter::Wire* wire = WireOf(bio);
    switch (cmd) {
      case BIO_CTRL_FLUSH: return 1;  // Written bytes are in the buffer already.
      case BIO_CTRL_EOF: return wire->incoming.empty() && wire->incoming_eof ? 1 : 0;
      case BIO_CTRL_PENDING: return static_cast<long>(wire->incoming.size());
      default: return 0;  // Unsupported (kTLS, datagrams, ...).
    }
  }
};

namespace {

// OpenSSL's plaintext records are at most 16 KiB; a smaller buffer only
// takes more SSL_read calls.
constexpr size_t kRecordBytes = 16384;

// True when SSL_get_error's `code` means the peer's stream ended (with or
// without close_notify) rather than an error.
bool IsEndOfStream(int code) {
  return code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && ERR_peek_error() == 0);
}

bool IsIpAddress(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

TlsFilter::TlsFilter(std::shared_ptr<const TlsContext> context, bool server, std::string peer)
    : context_(std::move(context)), server_(server), peer_(std::move(peer)) {}

TlsFilter::~TlsFilter() { SSL_free(ssl_); }  // Frees the BIO too.

std::unique_ptr<TlsFilter> TlsFilter::ForServer(std::shared_ptr<const TlsContext> context, std::string peer) {
  std::unique_ptr<TlsFilter> filter(new TlsFilter(std::move(context), /*server=*/true, std::move(peer)));
  filter->Start("");
  return filter;
}

std::unique_ptr<TlsFilter> TlsFilter::ForClient(std::shared_ptr<const TlsContext> context, std::string server_name,
                                                std::string peer) {
  std::unique_ptr<TlsFilter> filter(new TlsFilter(std::move(context), /*server=*/false, std::move(peer)));
  filter->Start(server_name);
  return filter;
}

// A failure here leaves the filter failed: every call returns the error.
void TlsFilter::Start(const std::string& server_name) {
  const std::string connection = "TLS connection with " + peer_;
  if (!context_ || context_->is_server() != server_) {
    error_ = Internal(connection + ": created with " + (context_ ? "the other side's" : "no") +
                      " TLS context: a bug in praefect, please report it");
    return;
  }
  ERR_clear_error();
  ssl_ = SSL_new(context_->ctx_);
  BIO* bio = ssl_ != nullptr ? BIO_new(WireBio::Method()) : nullptr;
  if (bio == nullptr) {
    error_ = Internal(connection + ": cannot create it (OpenSSL: " + DrainOpenSslErrors() +
                      "): praefect is probably out of memory");
    return;
  }
  BIO_set_data(bio, &wire_);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // The SSL owns the BIO.
  if (server_) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  // An IPv6 literal may come as in a URL.
  std::string host = server_name;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  server_name_ = host;
  if (host.empty()) {
    error_ = FailedPrecondition(connection + ": no server name to check the server's certificate against: the " +
                                "address must name a host");
    return;
  }
  bool ok = false;
  if (host.find('\0') != std::string::npos) {
    ok = false;  // OpenSSL takes C strings: never check a shortened name.
  } else if (IsIpAddress(host)) {
    // Certificates list IP addresses apart from names, and SNI carries names only.
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str()) == 1;
  } else {
    ok = SSL_set_tlsext_host_name(ssl_, host.c_str()) == 1 && SSL_set1_host(ssl_, host.c_str()) == 1;
  }
  if (!ok) {
    error_ = FailedPrecondition(connection + ": " + QuoteForMessage(host) +
                                " is not a valid host name or IP address (OpenSSL: " + DrainOpenSslErrors() +
                                "): check the address");
    return;
  }
  (void)Advance();  // The ClientHello; an error stays in error_.
}

Status TlsFilter::Fail(Status error) {
  if (error_.ok()) error_ = std::move(error);
  return error_;
}

Status TlsFilter::OpenSslFailure() {
  TlsFailureFacts facts;
  facts.server = server_;
  // The deciding error is libssl's first: a certificate refused also leaves
  // libcrypto's X509 errors behind it.
  std::string reasons;
  while (unsigned long code = ERR_get_error()) {
    if (facts.error == 0 || (ERR_GET_LIB(facts.error) != ERR_LIB_SSL && ERR_GET_LIB(code) == ERR_LIB_SSL)) {
      facts.error = code;
    }
    const char* reason = ERR_reason_error_string(code);
    if (!reasons.empty()) reasons += "; ";
    reasons += reason != nullptr ? reason : "error " + std::to_string(code);
  }
  facts.openssl = std::move(reasons);
  facts.verify_result = server_ ? X509_V_OK : SSL_get_verify_result(ssl_);
  facts.server_name = server_name_;
  facts.trust = context_->trust();
  return Unavailable((handshake_done_ ? "TLS connection with " : "TLS handshake with ") + peer_ +
                     " failed: " + ExplainTlsFailure(facts));
}

Status TlsFilter::Advance() {
  if (!error_.ok() || peer_closed_) return error_;
  if (!handshake_done_) {
    ERR_clear_error();
    const int rc = SSL_do_handshake(ssl_);
    if (rc != 1) {
      const int code = SSL_get_error(ssl_, rc);
      if (code == SSL_ERROR_WANT_READ) return Status::Ok();
      if (!IsEndOfStream(code)) return Fail(OpenSslFailure());
      ERR_clear_error();
      if (!server_) {
        return Fail(Unavailable("TLS handshake with " + peer_ +
                                " failed: the server closed the connection before the handshake finished: check "
                                "that it serves TLS on this port (a plaintext server needs a tcp:// address) and "
                                "look in its logs"));
      }
      peer_closed_ = true;  // A port probe, or a client that gave up: nothing to report.
      return Status::Ok();
    }
    OnHandshakeDone();
    if (!error_.ok()) return error_;
  }
  return ReadRecords();
}

void TlsFilter::OnHandshakeDone() {
  handshake_done_ = true;
  const unsigned char* alpn = nullptr;
  unsigned int alpn_size = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_size);
  if (alpn_size > 0) alpn_.assign(reinterpret_cast<const char*>(alpn), alpn_size);
  if (!plaintext_early_.empty()) {
    std::string early;
    early.swap(plaintext_early_);
    if (!Encrypt(early).ok()) return;
  }
  if (shutdown_requested_) SendCloseNotify();
}

Status TlsFilter::ReadRecords() {
  // Grows the buffer by about what was received: std::string zero-fills its
  // new space, which a fixed 16 KiB would do for every small read.
  const size_t step = std::clamp(wire_.incoming.size(), size_t{1024}, kRecordBytes);
  size_t used = plaintext_in_.size();
  for (;;) {
    if (plaintext_in_.size() == used) plaintext_in_.resize(used + step);
    size_t n = 0;
    ERR_clear_error();
    const int rc = SSL_read_ex(ssl_, plaintext_in_.data() + used, plaintext_in_.size() - used, &n);
    if (rc == 1) {
      used += n;
      continue;
    }
    plaintext_in_.resize(used);
    const int code = SSL_get_error(ssl_, rc);
    if (code == SSL_ERROR_WANT_READ) {
      assert(wire_.incoming.empty());  // WireBio asks for more only when it has given everything.
      return Status::Ok();
    }
    if (IsEndOfStream(code)) {
      ERR_clear_error();
      peer_closed_ = true;
      return Status::Ok();
    }
    return Fail(OpenSslFailure());
  }
}

Status TlsFilter::Encrypt(std::string_view plaintext) {
  while (!plaintext.empty()) {
    size_t n = 0;
    ERR_clear_error();
    const int rc = SSL_write_ex(ssl_, plaintext.data(), plaintext.size(), &n);
    // WireBio never pushes back, so a write stops only on an error.
    if (rc != 1) return Fail(OpenSslFailure());
    plaintext.remove_prefix(n);
  }
  return Status::Ok();
}

void TlsFilter::SendCloseNotify() {
  ERR_clear_error();
  (void)SSL_shutdown(ssl_);  // 0: sent, the peer's not seen yet; neither matters here.
  ERR_clear_error();
}

Status TlsFilter::ReceiveCiphertext(std::string_view bytes) {
  if (!error_.ok() || peer_closed_) return error_;
  wire_.incoming = bytes;
  (void)Advance();      // An error stays in error_, for ReadPlaintext.
  wire_.incoming = {};  // Not to be read after this call returns.
  return Status::Ok();
}

Status TlsFilter::ReceiveEof() {
  if (!error_.ok() || peer_closed_) return error_;
  wire_.incoming_eof = true;
  return Advance();
}

Status TlsFilter::ReadPlaintext(std::string* out) {
  if (out->empty()) {
    out->swap(plaintext_in_);
  } else {
    out->append(plaintext_in_);
  }
  plaintext_in_.clear();
  return error_;
}

Status TlsFilter::SendPlaintext(std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (shutdown_requested_) {
    return FailedPrecondition("TLS connection with " + peer_ +
                              ": data sent after Shutdown(): a bug in praefect, please report it");
  }
  if (!handshake_done_) {
    plaintext_early_.append(bytes);
    return Status::Ok();
  }
  return Encrypt(bytes);
}

void TlsFilter::TakeCiphertext(std::string* out) {
  if (out->empty()) {
    out->swap(wire_.outgoing);
  } else {
    out->append(wire_.outgoing);
  }
  wire_.outgoing.clear();
}

void TlsFilter::Shutdown() {
  if (shutdown_requested_ || !error_.ok()) return;
  shutdown_requested_ = true;
  if (handshake_done_) SendCloseNotify();
}

std::string TlsFilter::peer_description() const {
  std::string out = peer_;
  if (!handshake_done_) return out;
  out += " (";
  out += SSL_get_version(ssl_);
  out += ", ";
  out += SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_));
  out += alpn_.empty() ? ", no ALPN)" : ", ALPN " + alpn_ + ")";
  return out;
}

}  // namespace praefect::http2
