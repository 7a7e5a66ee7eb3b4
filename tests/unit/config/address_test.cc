// Node and listen addresses, as Gitaly's client.Dial and Go's net.Listen take them.
#include "config/address.h"

#include "test_support.h"

namespace praefect::config {
namespace {

void TestAcceptedNodeAddresses(void**) {
  struct Case {
    const char* address;
    NodeAddress::Scheme scheme;
    const char* target;
    const char* authority;
    bool has_port;
  } cases[] = {
      {"tcp://gitaly-1.internal:8075", NodeAddress::Scheme::kTcp, "gitaly-1.internal:8075", "", true},
      {"TCP://gitaly-1.internal:8075", NodeAddress::Scheme::kTcp, "gitaly-1.internal:8075", "", true},
      {"tcp://gitaly-internal-1.example.com", NodeAddress::Scheme::kTcp, "gitaly-internal-1.example.com", "",
       false},
      {"tcp://[::1]:8075", NodeAddress::Scheme::kTcp, "[::1]:8075", "", true},
      {"tcp://[::1]", NodeAddress::Scheme::kTcp, "[::1]", "", false},
      {"tls://gitaly-3.internal:9999", NodeAddress::Scheme::kTls, "gitaly-3.internal:9999", "", true},
      {"unix:/run/gitaly/gitaly.socket", NodeAddress::Scheme::kUnix, "/run/gitaly/gitaly.socket", "", false},
      {"unix:///run/gitaly/gitaly.socket", NodeAddress::Scheme::kUnix, "/run/gitaly/gitaly.socket", "",
       false},
      {"unix:gitaly.socket", NodeAddress::Scheme::kUnix, "gitaly.socket", "", false},
      {"dns:gitaly.service.consul:8075", NodeAddress::Scheme::kDns, "gitaly.service.consul:8075", "", false},
      {"dns:///gitaly.service.consul:8075", NodeAddress::Scheme::kDns, "gitaly.service.consul:8075", "",
       false},
      {"dns://10.0.0.53:8600/praefect.service.consul:2305", NodeAddress::Scheme::kDns,
       "praefect.service.consul:2305", "10.0.0.53:8600", false},
  };
  for (const Case& c : cases) {
    StatusOr<NodeAddress> a = ParseNodeAddress(c.address);
    expect_that(a.ok(), std::string(c.address) + " accepted: " + a.status().ToString());
    expect_that(
        a->scheme == c.scheme && a->target == c.target && a->authority == c.authority &&
            a->has_port == c.has_port,
        std::string(c.address) + " parsed into scheme, target " + c.target + " and authority " + c.authority);
  }
}

void TestRefusedNodeAddresses(void**) {
  struct Case {
    const char* address;
    const char* why;
  } cases[] = {
      {"localhost:2305", "write \"tcp://localhost:2305\""},
      {"gitaly-1.internal", "no scheme"},
      {"http://gitaly-1.internal:8075", "unknown scheme \"http:\""},
      {"tcp:gitaly-1.internal:8075", "must be followed by \"//host:port\""},
      {"tcp://", "no host"},
      {"tcp://:8075", "no host"},
      {"tcp://gitaly-1.internal:8075/", "must not have a path"},
      {"tcp://gitaly-1.internal:http", "port is not a number"},
      {"unix:", "no socket path"},
      {"dns://10.0.0.53", "needs \"/host:port\""},
      {"dns:", "no host to resolve"},
      {"", "it is empty"},
  };
  for (const Case& c : cases) {
    StatusOr<NodeAddress> a = ParseNodeAddress(c.address);
    expect_that(!a.ok(), std::string(c.address) + " refused");
    std::string m = a.status().message();
    expect_that(
        m.find("expected an address with scheme tcp://, tls://, unix: or dns:") != std::string::npos &&
            m.find("found \"" + std::string(c.address) + "\"") != std::string::npos &&
            m.find(c.why) != std::string::npos,
        "message names expected schemes, what was found and why (" + std::string(c.why) + "): " + m);
  }
}

void TestListenAddresses(void**) {
  for (const char* ok : {"0.0.0.0:2305", ":2305", "[::]:2305", "localhost:http", "praefect.internal:3305"}) {
    expect_that(CheckListenAddress(ok).ok(), std::string(ok) + " accepted");
  }
  for (const char* bad : {"2305", "localhost", "localhost:", "tcp://0.0.0.0:2305"}) {
    Status st = CheckListenAddress(bad);
    expect_that(!st.ok() && st.message().find("expected \"host:port\"") != std::string::npos &&
                    st.message().find(std::string("found \"") + bad + "\"") != std::string::npos,
                std::string(bad) + " refused with expected and found: " + st.message());
  }
}

}  // namespace
}  // namespace praefect::config

int main() {
  using namespace praefect::config;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestAcceptedNodeAddresses),
      cmocka_unit_test(TestRefusedNodeAddresses),
      cmocka_unit_test(TestListenAddresses),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
