#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "http2/tls_context.h"

// OpenSSL's SSL, declared here so that users of this header need no OpenSSL
// headers.
struct ssl_st;

namespace praefect::http2 {

// One TLS connection, server or client side, as a filter over bytes: it owns
// no socket and never blocks. Its owner moves ciphertext between the filter
// and a socket, and plaintext between the filter and an HTTP/2 session:
//
//   socket readable:  n = read(fd, buf)
//                     n > 0:  ReceiveCiphertext(buf[0, n))
//                     n == 0: ReceiveEof()
//                     then ReadPlaintext(&in), feed `in` to the session;
//                     peer_closed(): no more plaintext will come
//   session output:   SendPlaintext(bytes); it takes all of them, and holds
//                     them until the handshake is done
//   after any call:   TakeCiphertext(&out) and write `out` to the socket (a
//                     client's ClientHello is ready as soon as ForClient
//                     returns; handshake replies, tickets and alerts come out
//                     of ReceiveCiphertext)
//
// A partial write leaves the rest in the owner's buffer: keep writing it
// from an offset, and pass the buffer to TakeCiphertext again only once it
// is empty (TakeCiphertext then swaps instead of appending). While the socket
// does not take ciphertext, stop producing plaintext (ciphertext_size()).
//
// Errors come from ReadPlaintext (or ReceiveEof, SendPlaintext) and are
// sticky: after one, every call returns the same Status (for a handshake:
// "TLS handshake with 10.0.0.5:51234 failed: the client does not trust
// praefect's certificate (alert 48 unknown_ca): ..."); write whatever
// TakeCiphertext still gives (the alert telling the peer why), then close.
//
// Copies: a received byte is copied by OpenSSL from the bytes given to
// ReceiveCiphertext into its record buffer, decrypted in place there, and
// copied into the filter's plaintext buffer (whose new space std::string
// zero-fills first); ReadPlaintext hands that buffer over by swapping when
// `out` is empty, else appends it (a third copy). A sent byte is copied by
// OpenSSL from the bytes given to SendPlaintext into its record buffer,
// encrypted in place there, and copied into the filter's ciphertext buffer;
// TakeCiphertext swaps or appends it the same way. So two copies each way
// when the caller's buffers are empty at Read/Take time; bytes sent before
// the handshake is done take one more. The BIO under OpenSSL is the filter's
// own (reading the caller's bytes in place, appending to its buffer): a
// BIO_s_mem or a BIO pair would add one copy each way.
//
// Not thread-safe: used by one event loop. The context is shared.
class TlsFilter {
 public:
  // `peer` names the remote end in error messages ("10.0.0.5:51234").
  static std::unique_ptr<TlsFilter> ForServer(std::shared_ptr<const TlsContext> context, std::string peer);
  // `server_name` is the host (or IP address, "[::1]" accepted) of the
  // address, without its port: the server's certificate must be valid for
  // it, and a host name is also sent as SNI. `peer` names the remote
  // end in error messages ("gitaly-1.internal:8075"). The ClientHello is
  // ready for TakeCiphertext on return.
  // REQUIRES: !context->is_server().
  static std::unique_ptr<TlsFilter> ForClient(std::shared_ptr<const TlsContext> context, std::string server_name,
                                              std::string peer);

  ~TlsFilter();
  TlsFilter(const TlsFilter&) = delete;
  TlsFilter& operator=(const TlsFilter&) = delete;

  // Bytes read from the socket. Takes all of them: it decrypts what it can
  // now (driving the handshake) and OpenSSL keeps a partial record. What the
  // bytes cause (a failed handshake, a damaged record) is reported by the
  // ReadPlaintext that follows, after the plaintext decrypted before it, as
  // SecureLayer (connection.h) expects; this returns an error only when the
  // connection had failed before the call. Bytes after the peer's
  // close_notify are ignored.
  [[nodiscard]] Status ReceiveCiphertext(std::string_view bytes);

  // The socket reached end of file. Without a close_notify before it, this
  // is still a clean close (SSL_OP_IGNORE_UNEXPECTED_EOF: HTTP/2 notices a
  // truncated frame itself), except before the handshake finished: a server
  // filter then reports peer_closed() (a probe, or a client that gave up); a
  // client filter fails, since the server it dialled hung up on it.
  [[nodiscard]] Status ReceiveEof();

  // Appends the plaintext decrypted so far to `out`, then returns the
  // connection's error if it has one: UNAVAILABLE, with a message for the
  // operator (plaintext decrypted before the error is still handed over).
  [[nodiscard]] Status ReadPlaintext(std::string* out);

  // Queues `bytes` for the peer; takes all of them. FAILED_PRECONDITION after
  // Shutdown().
  [[nodiscard]] Status SendPlaintext(std::string_view bytes);

  // Appends the ciphertext ready for the socket to `out`.
  void TakeCiphertext(std::string* out);

  // Queues close_notify after what was sent before (once the handshake is
  // done, if it is not yet). Nothing can be sent afterwards; received data
  // is still read. The owner closes the socket once it has written what
  // TakeCiphertext gives; waiting for the peer's close_notify is not needed.
  void Shutdown();

  // Bytes TakeCiphertext would give: what the socket still has to take. A
  // writer that falls behind should stop producing plaintext while this is
  // high (HTTP/2 flow control then slows the other end).
  size_t ciphertext_size() const { return wire_.outgoing.size(); }
  // Plaintext sent before the handshake is done, held until it is: count it
  // as output not yet written, or a writer that looks only at the socket's
  // queue sees room while this grows.
  size_t held_plaintext_size() const { return plaintext_early_.size(); }

  bool handshake_done() const { return handshake_done_; }
  // The peer closed the TLS stream (close_notify, or EOF): no more plaintext
  // will come. Writing may go on until Shutdown().
  bool peer_closed() const { return peer_closed_; }
  // The application protocol agreed by ALPN: "h2", or "" when none was.
  std::string_view alpn() const { return alpn_; }
  // "10.0.0.5:51234", then once the handshake is done " (TLSv1.3,
  // TLS_AES_256_GCM_SHA384, ALPN h2)". For logs.
  std::string peer_description() const;

 private:
  // The bytes the BIO under OpenSSL reads and writes (see WireBio in
  // tls_filter.cc).
  struct Wire {
    std::string_view incoming;  // what is left of the bytes ReceiveCiphertext was given
    bool incoming_eof = false;  // ReceiveEof was called
    std::string outgoing;       // ciphertext not yet taken
  };
  friend struct WireBio;

  TlsFilter(std::shared_ptr<const TlsContext> context, bool server, std::string peer);
  void Start(const std::string& server_name);
  // Drives the handshake, then decrypts every complete record received.
  Status Advance();
  Status ReadRecords();
  void OnHandshakeDone();
  Status Encrypt(std::string_view plaintext);
  void SendCloseNotify();
  // Keeps the first error; returns the connection's error.
  Status Fail(Status error);
  // The error of the OpenSSL call that just failed, from its error queue.
  Status OpenSslFailure();

  const std::shared_ptr<const TlsContext> context_;
  const bool server_;
  const std::string peer_;
  std::string server_name_;  // client side
  ssl_st* ssl_ = nullptr;
  Wire wire_;
  std::string plaintext_in_;     // decrypted, not yet read
  std::string plaintext_early_;  // sent before the handshake was done
  std::string alpn_;
  Status error_;
  bool handshake_done_ = false;
  bool peer_closed_ = false;
  bool shutdown_requested_ = false;
};

}  // namespace praefect::http2
