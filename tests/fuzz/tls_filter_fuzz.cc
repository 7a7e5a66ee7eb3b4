// libFuzzer target for src/http2's TlsFilter: arbitrary bytes as the
// ciphertext a peer sends.
//
// Input layout: byte 0 picks the side; its low bit: 0 = a server filter
// receives the rest as a client's bytes, 1 = a client filter (its ClientHello
// sent) receives the rest as the server's answer. Byte 1 cuts the rest into
// reads of 1 + byte1 * 64 bytes (0: one read), so records and headers are
// split anywhere. The certificates are made once, at the first input.
// Invariants, checked with abort():
//  * no crash, leak or out-of-bounds access (ASan, UBSan);
//  * bytes without keys never complete a handshake nor yield plaintext;
//  * an error is UNAVAILABLE with a message naming the peer, reported by
//    ReadPlaintext, and sticky: every later call returns the same Status;
//  * after an error or a close, calls stay harmless (Shutdown, EOF, more bytes).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "http2/tls_context.h"
#include "http2/tls_filter.h"
#include "test_certificates.h"
#include "fuzz_check.h"

namespace {

using praefect::Status;
using praefect::StatusCode;
using praefect::http2::ClientOptions;
using praefect::http2::TlsContext;
using praefect::http2::TlsFilter;

constexpr char kPeer[] = "192.0.2.7:40000";

struct Contexts {
  std::shared_ptr<const TlsContext> server;
  std::shared_ptr<const TlsContext> client;
};

const Contexts& MadeOnce() {
  static const Contexts contexts = [] {
    praefect::http2::testing::TestPki pki;  // removed once the contexts hold what they need
    auto server = TlsContext::Server(pki.server());
    ClientOptions options;
    options.ca_file = pki.Path("ca.pem");
    auto client = TlsContext::Client(options);
    if (!server.ok() || !client.ok()) {
      std::fprintf(stderr, "cannot make the TLS contexts: %s %s\n", server.status().ToString().c_str(),
                   client.status().ToString().c_str());
      std::abort();
    }
    return Contexts{*server, *client};
  }();
  return contexts;
}

void CheckError(const Status& st) {
  if (st.ok()) return;
  FUZZ_CHECK(st.code() == StatusCode::kUnavailable);
  FUZZ_CHECK(st.message().find(kPeer) != std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Contexts& contexts = MadeOnce();
  const bool server = (data[0] & 1) == 0;
  const size_t piece = data[1] == 0 ? size : 1 + size_t{data[1]} * 64;
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);

  std::unique_ptr<TlsFilter> filter = server ? TlsFilter::ForServer(contexts.server, kPeer)
                                             : TlsFilter::ForClient(contexts.client, "praefect.test", kPeer);
  std::string ciphertext, plaintext;
  filter->TakeCiphertext(&ciphertext);
  FUZZ_CHECK(server == ciphertext.empty());  // a client's ClientHello
  FUZZ_CHECK(filter->SendPlaintext("held until a handshake that never comes").ok());

  Status first;
  while (!rest.empty()) {
    const std::string_view chunk = rest.substr(0, piece);
    rest.remove_prefix(chunk.size());
    // Taken unless the connection had failed already; ReadPlaintext says
    // what the bytes caused.
    Status received = filter->ReceiveCiphertext(chunk);
    FUZZ_CHECK(received.message() == first.message());
    Status st = filter->ReadPlaintext(&plaintext);
    CheckError(st);
    if (!first.ok()) FUZZ_CHECK(st.message() == first.message());
    if (first.ok()) first = st;
    filter->TakeCiphertext(&ciphertext);
  }
  FUZZ_CHECK(!filter->handshake_done());
  FUZZ_CHECK(plaintext.empty());
  FUZZ_CHECK(filter->alpn().empty());

  // The end of the stream, then what a closing owner does.
  Status eof = filter->ReceiveEof();
  CheckError(eof);
  if (!first.ok()) FUZZ_CHECK(eof.message() == first.message());
  filter->Shutdown();
  filter->TakeCiphertext(&ciphertext);
  CheckError(filter->ReceiveCiphertext(std::string_view(reinterpret_cast<const char*>(data), size)));
  (void)filter->peer_description();
  return 0;
}
