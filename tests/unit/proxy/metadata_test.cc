#include "proxy/metadata.h"

#include <string>

#include "test_support.h"

using praefect::StatusCode;
using praefect::proxy::Route;
using praefect::proxy::internal::IsTransportHeader;
using praefect::proxy::internal::Metadata;
using praefect::proxy::internal::MetadataMap;
using praefect::proxy::internal::ResponseMetadata;
using praefect::proxy::internal::UpstreamMetadata;

namespace {

// REQUIRES: `kv` outlives the result (it refers to the strings).
MetadataMap Map(const std::vector<std::pair<std::string, std::string>>& kv) {
  MetadataMap m;
  for (const auto& [k, v] : kv) m.emplace(grpc::string_ref(k), grpc::string_ref(v));
  return m;
}

void test_transport_headers(void**) {
  for (const char* k : {":authority", ":path", "content-type", "te", "user-agent", "host", "grpc-timeout",
                        "grpc-encoding", "grpc-accept-encoding", "grpc-status-details-bin", "connection",
                        "grpc-trace-bin"}) {
    expect_that(IsTransportHeader(k), std::string(k) + " to be a transport header");
  }
  for (const char* k : {"authorization", "x-custom", "x-bin-bin", "gitaly-feature-x", "correlation-id"}) {
    expect_that(!IsTransportHeader(k), std::string(k) + " to be forwarded");
  }
}

void test_upstream_metadata_edits(void**) {
  const std::vector<std::pair<std::string, std::string>> kv = {
      {"user-agent", "grpc-go/1.0"}, {"authorization", "Bearer client"}, {"x-a", "1"},
      {"x-a", "2"},                  {"x-drop", "d"},                    {"x-bin-bin", std::string("\0\1", 2)}};
  MetadataMap client = Map(kv);
  Route route;
  route.set_metadata = {{"authorization", "Bearer node"}, {"x-new", "n"}, {"x-new", "m"}};
  route.drop_metadata = {"x-drop"};
  auto out = UpstreamMetadata(client, route, "/p.S/M");
  assert_status_ok(out.status());
  const Metadata want = {{"x-a", "1"}, {"x-a", "2"}, {"x-bin-bin", std::string("\0\1", 2)},
                         {"authorization", "Bearer node"}, {"x-new", "n"}, {"x-new", "m"}};
  expect_that(*out == want, "client headers minus transport, drops and replaced keys, then the sets");
}

void test_upstream_metadata_refuses_bad_sets(void**) {
  MetadataMap client;
  struct Case {
    std::string key, value, says;
  };
  for (const Case& c : std::vector<Case>{{"Upper", "v", "not a legal gRPC metadata key"},
                                         {"", "v", "not a legal gRPC metadata key"},
                                         {"content-type", "x", "transport header"},
                                         {"grpc-timeout", "1S", "transport header"},
                                         {"x-text", "a\x01", "outside printable ASCII"}}) {
    Route route;
    route.set_metadata = {{c.key, c.value}};
    auto out = UpstreamMetadata(client, route, "/p.S/M");
    expect_that(!out.ok() && out.status().code() == StatusCode::kInternal, "INTERNAL for key \"" + c.key + "\"");
    expect_that(out.status().message().find(c.says) != std::string::npos &&
                    out.status().message().find("/p.S/M") != std::string::npos,
                "a message naming the method and saying " + c.says + ", got " + out.status().message());
  }
  Route binary;
  binary.set_metadata = {{"x-ok-bin", std::string("\0\xff", 2)}};
  assert_status_ok(UpstreamMetadata(client, binary, "/p.S/M").status());
}

void test_response_metadata(void**) {
  // Map() refers to these strings; they must outlive it.
  const std::vector<std::pair<std::string, std::string>> kv = {
      {"content-type", "application/grpc"}, {"x-t", "1"}, {"grpc-status-details-bin", "zz"}, {"x-t-bin", std::string("\0", 1)}};
  MetadataMap upstream = Map(kv);
  const Metadata want = {{"x-t", "1"}, {"x-t-bin", std::string("\0", 1)}};
  expect_that(ResponseMetadata(upstream) == want, "application headers only");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transport_headers),
      cmocka_unit_test(test_upstream_metadata_edits),
      cmocka_unit_test(test_upstream_metadata_refuses_bad_sets),
      cmocka_unit_test(test_response_metadata),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
