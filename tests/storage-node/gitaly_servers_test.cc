// The gitaly-servers metadata: base64 JSON {storage: {address, token}}.
#include "gitaly_servers.h"

#include "test_support.h"

using praefect::storagenode::EncodeGitalyServers;
using praefect::storagenode::ParseGitalyServers;
using praefect::storagenode::ServerAddress;

static void ParsesWhatGoWrites(void**) {
  // printf '%s' '{"default":{"address":"tcp://127.0.0.1:2305","token":"s\u00e9cret"},
  //   "other":{"address":"unix:/run/g.sock","token":"","extra":[1,{"a":null}]}}' | base64 -w0
  auto servers = ParseGitalyServers(
      "eyJkZWZhdWx0Ijp7ImFkZHJlc3MiOiJ0Y3A6Ly8xMjcuMC4wLjE6MjMwNSIsInRva2VuIjoic1x1MDBlOWNyZXQifSwib3RoZXIiOnsiYWRk"
      "cmVzcyI6InVuaXg6L3J1bi9nLnNvY2siLCJ0b2tlbiI6IiIsImV4dHJhIjpbMSx7ImEiOm51bGx9XX19");
  assert_status_ok(servers.status());
  assert_int_equal(servers->size(), 2);
  assert_string_equal(servers->at("default").address.c_str(), "tcp://127.0.0.1:2305");
  assert_string_equal(servers->at("default").token.c_str(), "s\xc3\xa9" "cret");
  assert_string_equal(servers->at("other").address.c_str(), "unix:/run/g.sock");
  assert_string_equal(servers->at("other").token.c_str(), "");
}

static void RoundTrips(void**) {
  std::map<std::string, ServerAddress> in = {{"a\"b", {"tcp://h:1", "t\n"}}, {"c", {"unix:/x", ""}}};
  // Lengths 0..2 mod 3 of the JSON exercise every padding case.
  for (int pad = 0; pad < 3; ++pad) {
    in["c"].token = std::string(static_cast<size_t>(pad), 'x');
    auto out = ParseGitalyServers(EncodeGitalyServers(in));
    assert_status_ok(out.status());
    assert_int_equal(out->size(), 2);
    assert_string_equal(out->at("a\"b").token.c_str(), "t\n");
    assert_string_equal(out->at("c").token.c_str(), in["c"].token.c_str());
  }
}

static void RefusesBadInput(void**) {
  struct Case {
    const char* header;
    const char* want;
  } cases[] = {
      {"abc", "not a multiple of 4"},
      {"!!!!", "not base64"},
      {"W10=", "expected an object"},                                  // []
      {"eyJhIjoxfQ==", "must be an object"},                           // {"a":1}
      {"eyJhIjp7ImFkZHJlc3MiOjF9fQ==", "\"address\" of storage \"a\" must be a string"},  // {"a":{"address":1}}
      {"e30geA==", "trailing data"},                                   // {} x
      {"eyJhIjp7fQ==", "expected ',' or '}'"},                         // {"a":{}
  };
  for (const auto& c : cases) {
    auto out = ParseGitalyServers(c.header);
    expect_that(!out.ok(), std::string("accepted ") + c.header);
    expect_that(out.status().message().find(c.want) != std::string::npos,
                std::string(c.header) + ": " + out.status().message());
  }
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ParsesWhatGoWrites),
      cmocka_unit_test(RoundTrips),
      cmocka_unit_test(RefusesBadInput),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
