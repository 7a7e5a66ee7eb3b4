#include "http2/tls_filter.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http2/tls_context.h"
#include "test_certificates.h"
#include "test_support.h"

using praefect::Status;
using praefect::StatusCode;
using praefect::http2::ClientOptions;
using praefect::http2::TlsContext;
using praefect::http2::TlsFiles;
using praefect::http2::TlsFilter;
using praefect::http2::testing::TestPki;

namespace {

TestPki* pki = nullptr;

constexpr char kClientPeer[] = "127.0.0.1:51234";     // how the server filter names its client
constexpr char kServerPeer[] = "praefect.test:2305";  // how the client filter names its server

std::shared_ptr<const TlsContext> ServerContext(const TlsFiles& files) {
  auto ctx = TlsContext::Server(files);
  assert_status_ok(ctx.status());
  return *ctx;
}

std::shared_ptr<const TlsContext> ClientContext(const std::string& ca_file) {
  ClientOptions options;
  options.ca_file = ca_file;
  auto ctx = TlsContext::Client(options);
  assert_status_ok(ctx.status());
  return *ctx;
}

bool Contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

void ExpectError(const Status& st, std::initializer_list<std::string_view> parts) {
  expect_that(st.code() == StatusCode::kUnavailable, "UNAVAILABLE, got " + st.ToString());
  for (std::string_view part : parts) {
    expect_that(Contains(st.message(), part), "\"" + std::string(part) + "\" in: " + st.message());
  }
}

// Deterministic bytes that do not repeat within 4 MiB.
std::string Payload(size_t size, uint32_t seed) {
  std::string out(size, '\0');
  uint32_t x = seed;
  for (char& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

// What the connection does with `bytes`: ReceiveCiphertext's status, else
// that of the ReadPlaintext after it (which reports what the bytes caused).
Status Feed(TlsFilter& filter, std::string_view bytes) {
  Status received = filter.ReceiveCiphertext(bytes);
  std::string plaintext;
  Status read = filter.ReadPlaintext(&plaintext);
  return received.ok() ? read : received;
}

// One end of a connection in a test: a filter, what it received, and its
// first error.
struct End {
  std::unique_ptr<TlsFilter> filter;
  std::string received;
  Status status;

  // Gives `ciphertext` to the filter in pieces of at most `piece` bytes.
  void Receive(std::string_view ciphertext, size_t piece) {
    while (!ciphertext.empty() && status.ok()) {
      const size_t n = std::min(piece, ciphertext.size());
      Status st = filter->ReceiveCiphertext(ciphertext.substr(0, n));
      Status read = filter->ReadPlaintext(&received);
      if (status.ok()) status = st.ok() ? read : st;
      ciphertext.remove_prefix(n);
    }
  }
};

struct Connection {
  End client, server;
  std::string client_to_server;  // every ciphertext byte the client sent
};

Connection Connect(std::shared_ptr<const TlsContext> client_ctx, std::shared_ptr<const TlsContext> server_ctx,
                   const std::string& server_name = "praefect.test") {
  Connection c;
  c.client.filter = TlsFilter::ForClient(std::move(client_ctx), server_name, kServerPeer);
  c.server.filter = TlsFilter::ForServer(std::move(server_ctx), kClientPeer);
  return c;
}

// Moves ciphertext both ways, in pieces of at most `piece` bytes, until
// neither end has any left.
void Shuttle(Connection& c, size_t piece = SIZE_MAX) {
  for (int round = 0; round < 100; ++round) {
    std::string to_server, to_client;
    c.client.filter->TakeCiphertext(&to_server);
    c.server.filter->TakeCiphertext(&to_client);
    if (to_server.empty() && to_client.empty()) return;
    c.client_to_server += to_server;
    c.server.Receive(to_server, piece);
    c.client.Receive(to_client, piece);
  }
  fail_msg("the filters still exchange ciphertext after 100 rounds");
}

void test_handshake_selects_h2(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  expect_that(c.client.filter->ciphertext_size() > 0, "a ClientHello ready as soon as the client filter exists");
  expect_that(!c.client.filter->handshake_done() && !c.server.filter->handshake_done(), "no handshake yet");
  Shuttle(c);
  assert_status_ok(c.client.status);
  assert_status_ok(c.server.status);
  expect_that(c.client.filter->handshake_done() && c.server.filter->handshake_done(), "handshake done on both ends");
  expect_that(c.client.filter->alpn() == "h2", "client ALPN h2, got \"" + std::string(c.client.filter->alpn()) + "\"");
  expect_that(c.server.filter->alpn() == "h2", "server ALPN h2");
  const std::string description = c.server.filter->peer_description();
  expect_that(
      description.starts_with(kClientPeer) && Contains(description, "TLSv1.3") && Contains(description, "ALPN h2"),
      "peer, version and ALPN in: " + description);
  expect_that(!c.client.filter->peer_closed() && !c.server.filter->peer_closed(), "nobody closed");
}

void test_data_flows_both_ways_in_pieces(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  Shuttle(c);
  assert_status_ok(c.client.filter->SendPlaintext("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  assert_status_ok(c.server.filter->SendPlaintext("server settings"));
  Shuttle(c);
  assert_string_equal(c.server.received.c_str(), "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  assert_string_equal(c.client.received.c_str(), "server settings");

  // 4 MiB each way: sent in 10000-byte writes, delivered in 1371-byte reads
  // (records cut anywhere) one way and whole the other.
  const std::string up = Payload(4 << 20, 1), down = Payload(4 << 20, 2);
  c.server.received.clear();
  c.client.received.clear();
  c.client_to_server.clear();
  for (size_t at = 0; at < up.size(); at += 10000) {
    assert_status_ok(c.client.filter->SendPlaintext(std::string_view(up).substr(at, 10000)));
  }
  Shuttle(c, 1371);
  assert_status_ok(c.server.status);
  expect_that(c.server.received.size() == up.size(), "4 MiB up, got " + std::to_string(c.server.received.size()));
  expect_that(c.server.received == up, "the same bytes up");
  // Encrypted on the wire: no 64-byte run of the payload appears in it.
  expect_that(!Contains(c.client_to_server, std::string_view(up).substr(123456, 64)), "no plaintext on the wire");
  assert_status_ok(c.server.filter->SendPlaintext(down));
  Shuttle(c);
  assert_status_ok(c.client.status);
  expect_that(c.client.received == down, "the same 4 MiB down");
}

void test_data_sent_before_the_handshake_arrives_after_it(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  assert_status_ok(c.client.filter->SendPlaintext("early "));
  assert_status_ok(c.client.filter->SendPlaintext("request"));
  assert_status_ok(c.server.filter->SendPlaintext("early reply"));
  expect_that(c.client.filter->held_plaintext_size() == 13, "13 bytes held by the client");
  Shuttle(c, 7);
  assert_status_ok(c.server.status);
  assert_status_ok(c.client.status);
  assert_string_equal(c.server.received.c_str(), "early request");
  assert_string_equal(c.client.received.c_str(), "early reply");
  expect_that(c.client.filter->held_plaintext_size() == 0, "none held after the handshake");
}

void test_client_that_does_not_trust_the_ca_fails_clearly(void**) {
  Connection c = Connect(ClientContext(pki->Path("other_ca.pem")), ServerContext(pki->server()));
  Shuttle(c);
  ExpectError(c.client.status,
              {"TLS handshake with praefect.test:2305 failed: praefect does not trust the server's certificate",
               "unable to get local issuer certificate", "the CA file \"" + pki->Path("other_ca.pem") + "\""});
  ExpectError(c.server.status, {"TLS handshake with 127.0.0.1:51234 failed: the client does not trust praefect's "
                                "certificate (alert 48 unknown_ca): give the client the CA certificate"});
  expect_that(!c.client.filter->handshake_done() && !c.server.filter->handshake_done(), "no handshake");

  // The system's trust store does not hold a CA made a moment ago either.
  Connection system = Connect(ClientContext(""), ServerContext(pki->server()));
  Shuttle(system);
  ExpectError(system.client.status, {"does not trust the server's certificate", "the system's trust store"});
}

void test_wrong_host_name_fails(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()), "other.test");
  Shuttle(c);
  ExpectError(c.client.status, {"TLS handshake with praefect.test:2305 failed: the server's certificate is not "
                                "valid for \"other.test\"",
                                "subjectAltName"});
  ExpectError(c.server.status, {"the client rejected praefect's certificate", "subjectAltName"});
}

void test_ip_address_is_verified(void**) {
  auto client_ctx = ClientContext(pki->Path("ca.pem"));
  auto server_ctx = ServerContext(pki->server());
  Connection good = Connect(client_ctx, server_ctx, "127.0.0.1");
  Shuttle(good);
  assert_status_ok(good.client.status);
  expect_that(good.client.filter->handshake_done(), "127.0.0.1 is in the certificate");
  for (const char* address : {"127.0.0.2", "[::1]"}) {
    Connection bad = Connect(client_ctx, server_ctx, address);
    Shuttle(bad);
    ExpectError(bad.client.status, {"is not valid for"});
  }
}

void test_expired_server_certificate_is_refused(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->Files("expired.pem", "server.key")));
  Shuttle(c);
  ExpectError(c.client.status, {"the server's certificate has expired"});
  ExpectError(c.server.status, {"the client says praefect's certificate has expired (alert 45 certificate_expired)"});
}

// A client made with OpenSSL directly, for what TlsContext::Client never
// does: no ALPN, other protocols, old TLS versions. It trusts anything.
class RawClient {
 public:
  RawClient(int max_version, std::string alpn_wire, bool allow_old = false) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    if (allow_old) {
      SSL_CTX_set_min_proto_version(ctx_, TLS1_VERSION);
      SSL_CTX_set_cipher_list(ctx_, "DEFAULT@SECLEVEL=0");
    }
    SSL_CTX_set_max_proto_version(ctx_, max_version);
    if (!alpn_wire.empty()) {
      SSL_CTX_set_alpn_protos(ctx_, reinterpret_cast<const unsigned char*>(alpn_wire.data()),
                              static_cast<unsigned>(alpn_wire.size()));
    }
    ssl_ = SSL_new(ctx_);
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl_, in_, out_);
    SSL_set_connect_state(ssl_);
  }
  ~RawClient() {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  // Runs a handshake with `server` in memory; true when it completed on both ends.
  bool Handshake(TlsFilter& server, Status* server_status) {
    for (int round = 0; round < 20; ++round) {
      SSL_do_handshake(ssl_);
      std::string to_server = Drain();
      if (!to_server.empty()) {
        *server_status = Feed(server, to_server);
        if (!server_status->ok()) return false;
      }
      std::string to_client;
      server.TakeCiphertext(&to_client);
      if (to_server.empty() && to_client.empty()) break;
      BIO_write(in_, to_client.data(), static_cast<int>(to_client.size()));
    }
    return SSL_is_init_finished(ssl_) && server.handshake_done();
  }

 private:
  std::string Drain() {
    std::string out;
    char buf[4096];
    int n;
    while ((n = BIO_read(out_, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
  }

  SSL_CTX* ctx_;
  SSL* ssl_;
  BIO* in_;
  BIO* out_;
};

void test_client_offering_no_h2_gets_no_alpn(void**) {
  auto server_ctx = ServerContext(pki->server());
  struct Case {
    const char* name;
    std::string alpn_wire;
    const char* expected;
  } cases[] = {
      {"no ALPN", "", ""},
      {"http/1.1 only", std::string("\x08http/1.1", 9), ""},
      {"http/1.1 and h2", std::string("\x08http/1.1\x02h2", 12), "h2"},
  };
  for (const Case& c : cases) {
    auto server = TlsFilter::ForServer(server_ctx, kClientPeer);
    RawClient client(TLS1_3_VERSION, c.alpn_wire);
    Status st;
    expect_that(client.Handshake(*server, &st), std::string(c.name) + ": handshake done, status " + st.ToString());
    expect_that(server->alpn() == c.expected,
                std::string(c.name) + ": ALPN \"" + c.expected + "\", got \"" + std::string(server->alpn()) + "\"");
  }
}

void test_tls12_is_served_and_older_versions_refused(void**) {
  auto server_ctx = ServerContext(pki->server());
  auto server = TlsFilter::ForServer(server_ctx, kClientPeer);
  RawClient tls12(TLS1_2_VERSION, std::string("\x02h2", 3));
  Status st;
  expect_that(tls12.Handshake(*server, &st), "TLS 1.2 handshake, status " + st.ToString());
  expect_that(Contains(server->peer_description(), "TLSv1.2"), "TLSv1.2 in " + server->peer_description());
  expect_that(server->alpn() == "h2", "h2 over TLS 1.2");

  auto refused = TlsFilter::ForServer(server_ctx, kClientPeer);
  RawClient tls11(TLS1_1_VERSION, "", /*allow_old=*/true);
  expect_that(!tls11.Handshake(*refused, &st), "no TLS 1.1 handshake");
  ExpectError(st, {"TLS handshake with 127.0.0.1:51234 failed: the client offers only TLS versions older than 1.2"});
}

void test_close_notify_is_a_clean_close(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  Shuttle(c);
  assert_status_ok(c.client.filter->SendPlaintext("last request"));
  c.client.filter->Shutdown();
  Shuttle(c);
  assert_status_ok(c.server.status);
  assert_string_equal(c.server.received.c_str(), "last request");
  expect_that(c.server.filter->peer_closed(), "the server saw the client's close_notify");
  expect_that(!c.client.filter->peer_closed(), "the server has not closed");
  const Status after = c.client.filter->SendPlaintext("more");
  expect_that(after.code() == StatusCode::kFailedPrecondition, "no sending after Shutdown: " + after.ToString());
  // The other direction stays open until the server closes it too.
  assert_status_ok(c.server.filter->SendPlaintext("last reply"));
  c.server.filter->Shutdown();
  Shuttle(c);
  assert_status_ok(c.client.status);
  assert_string_equal(c.client.received.c_str(), "last reply");
  expect_that(c.client.filter->peer_closed(), "the client saw the server's close_notify");
}

void test_shutdown_before_the_handshake_is_sent_after_it(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  assert_status_ok(c.client.filter->SendPlaintext("only request"));
  c.client.filter->Shutdown();
  Shuttle(c);
  assert_status_ok(c.server.status);
  assert_string_equal(c.server.received.c_str(), "only request");
  expect_that(c.server.filter->peer_closed(), "close_notify after the data");
}

void test_eof_is_a_clean_close(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  Shuttle(c);
  assert_status_ok(c.server.filter->ReceiveEof());
  expect_that(c.server.filter->peer_closed(), "EOF without close_notify closes");
  assert_status_ok(c.server.filter->ReceiveCiphertext("ignored after the end"));
  assert_status_ok(c.client.filter->ReceiveEof());
  expect_that(c.client.filter->peer_closed(), "the client too");
}

void test_eof_during_the_handshake(void**) {
  // A server sees a probe or a client giving up: closed, not an error.
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  std::string hello;
  c.client.filter->TakeCiphertext(&hello);
  assert_status_ok(c.server.filter->ReceiveCiphertext(std::string_view(hello).substr(0, 20)));
  assert_status_ok(c.server.filter->ReceiveEof());
  expect_that(c.server.filter->peer_closed() && !c.server.filter->handshake_done(), "closed before the handshake");
  // A client was hung up on by the server it dialled.
  ExpectError(c.client.filter->ReceiveEof(),
              {"TLS handshake with praefect.test:2305 failed: the server closed the connection before the handshake "
               "finished",
               "tcp://"});
}

void test_garbage_fails_cleanly(void**) {
  auto server_ctx = ServerContext(pki->server());
  struct Case {
    const char* name;
    std::string bytes;
    const char* expected;
  } cases[] = {
      {"random bytes", Payload(4096, 3), "TLS handshake with 127.0.0.1:51234 failed: "},
      {"plaintext HTTP/2", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "what the client sent is not TLS"},
      {"plaintext HTTP/1", "GET / HTTP/1.1\r\nHost: praefect\r\n\r\n", "is the client speaking plaintext"},
      {"a record header only", std::string("\x16\x03\x01\xff\xff", 5), "not TLS"},
  };
  for (const Case& c : cases) {
    auto server = TlsFilter::ForServer(server_ctx, kClientPeer);
    // The bytes are taken; ReadPlaintext says what they caused.
    assert_status_ok(server->ReceiveCiphertext(c.bytes));
    Status st = Feed(*server, "");
    if (st.ok()) st = Feed(*server, Payload(20000, 4));  // a header may wait for its record
    ExpectError(st, {c.expected});
    // Sticky: every later call says the same.
    expect_that(server->ReceiveCiphertext("more").message() == st.message(), std::string(c.name) + ": refused");
    std::string plaintext;
    expect_that(server->ReadPlaintext(&plaintext).message() == st.message(), std::string(c.name) + ": same error");
    expect_that(server->SendPlaintext("x").message() == st.message(), std::string(c.name) + ": same error on send");
    expect_that(plaintext.empty(), std::string(c.name) + ": no plaintext");
  }
  // A client that reached a plaintext server.
  auto client = TlsFilter::ForClient(ClientContext(pki->Path("ca.pem")), "praefect.test", kServerPeer);
  ExpectError(Feed(*client, std::string("\x00\x00\x12\x04\x00\x00\x00\x00\x00", 9)),
              {"what the server sent is not TLS", "does the server serve TLS on this port?"});
}

void test_damaged_record_after_the_handshake_fails(void**) {
  Connection c = Connect(ClientContext(pki->Path("ca.pem")), ServerContext(pki->server()));
  Shuttle(c);
  assert_status_ok(c.client.filter->SendPlaintext("a request that gets damaged"));
  std::string record;
  c.client.filter->TakeCiphertext(&record);
  record[record.size() - 3] ^= 0x01;
  ExpectError(Feed(*c.server.filter, record),
              {"TLS connection with 127.0.0.1:51234 failed: a TLS record from the client failed its integrity check"});
  std::string alert;
  c.server.filter->TakeCiphertext(&alert);
  expect_that(!alert.empty(), "an alert for the client");
  c.client.Receive(alert, SIZE_MAX);
  ExpectError(c.client.status,
              {"TLS connection with praefect.test:2305 failed: the server reported a TLS protocol error "
               "(alert 20 bad_record_mac)"});
}

void test_misuse_fails_without_a_crash(void**) {
  auto server = TlsFilter::ForServer(ClientContext(pki->Path("ca.pem")), kClientPeer);
  const Status st = server->ReceiveCiphertext("anything");
  expect_that(st.code() == StatusCode::kInternal && Contains(st.message(), "a bug in praefect"), st.ToString());
  auto client = TlsFilter::ForClient(ClientContext(pki->Path("ca.pem")), "", kServerPeer);
  expect_that(client->SendPlaintext("x").code() == StatusCode::kFailedPrecondition, "no server name");
  // A name OpenSSL would cut at its NUL byte is refused, not checked shortened.
  auto cut =
      TlsFilter::ForClient(ClientContext(pki->Path("ca.pem")), std::string("praefect.test\0.evil", 19), kServerPeer);
  const Status nul = cut->ReceiveCiphertext("x");
  expect_that(nul.code() == StatusCode::kFailedPrecondition && Contains(nul.message(),
                                                                        "praefect.test\\x00.evil\" is "
                                                                        "not a valid host name"),
              nul.ToString());
  std::string hello;
  cut->TakeCiphertext(&hello);
  expect_that(hello.empty(), "no ClientHello for a refused name");
}

int Setup(void**) {
  pki = new TestPki();
  return 0;
}

int Teardown(void**) {
  delete pki;
  return 0;
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_selects_h2),
      cmocka_unit_test(test_data_flows_both_ways_in_pieces),
      cmocka_unit_test(test_data_sent_before_the_handshake_arrives_after_it),
      cmocka_unit_test(test_client_that_does_not_trust_the_ca_fails_clearly),
      cmocka_unit_test(test_wrong_host_name_fails),
      cmocka_unit_test(test_ip_address_is_verified),
      cmocka_unit_test(test_expired_server_certificate_is_refused),
      cmocka_unit_test(test_client_offering_no_h2_gets_no_alpn),
      cmocka_unit_test(test_tls12_is_served_and_older_versions_refused),
      cmocka_unit_test(test_close_notify_is_a_clean_close),
      cmocka_unit_test(test_shutdown_before_the_handshake_is_sent_after_it),
      cmocka_unit_test(test_eof_is_a_clean_close),
      cmocka_unit_test(test_eof_during_the_handshake),
      cmocka_unit_test(test_garbage_fails_cleanly),
      cmocka_unit_test(test_damaged_record_after_the_handshake_fails),
      cmocka_unit_test(test_misuse_fails_without_a_crash),
  };
  return cmocka_run_group_tests(tests, Setup, Teardown);
}
