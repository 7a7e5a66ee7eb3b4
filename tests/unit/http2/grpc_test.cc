// gRPC framing pieces: the message scanner over arbitrary splits, timeouts,
// message encoding, status from trailers.
#include "http2/grpc.h"

#include "test_support.h"

using namespace praefect::http2;
using namespace praefect::http2::rpc;
using praefect::StatusCode;
using namespace std::chrono_literals;

namespace {

void test_scanner_over_every_split(void**) {
  const std::string stream = Prefix(3) + "abc" + Prefix(0) + Prefix(70000) + std::string(70000, 'x') + Prefix(1) + "z";
  for (size_t piece : {size_t{1}, size_t{2}, size_t{5}, size_t{7}, size_t{4096}, stream.size()}) {
    MessageScanner s(1 << 20);
    size_t started = 0, ended = 0;
    for (size_t i = 0; i < stream.size(); i += piece) {
      auto r = s.Feed(std::string_view(stream).substr(i, piece));
      started += r.messages_started;
      ended += r.messages_ended;
      expect_that(!r.oversized, "nothing over the limit");
    }
    expect_that(started == 4 && ended == 4 && s.at_boundary(),
                "4 messages in pieces of " + std::to_string(piece) + ": " + std::to_string(started) + "/" +
                    std::to_string(ended));
  }
  MessageScanner limited(1000);
  auto r = limited.Feed(Prefix(1001).substr(0, 3));
  expect_that(!r.oversized, "not yet known");
  r = limited.Feed(Prefix(1001).substr(3));
  expect_that(r.oversized == 1001u, "the announced length over the limit, before any payload");
}

void test_timeouts(void**) {
  expect_that(ParseTimeout("10S") == std::chrono::nanoseconds(10s), "10S");
  expect_that(ParseTimeout("1500m") == std::chrono::nanoseconds(1500ms), "1500m");
  expect_that(ParseTimeout("99999999H") == kMaxTimeout, "the largest is capped (11,000 years)");
  expect_that(ParseTimeout("99999999n") == std::chrono::nanoseconds(99999999), "the smallest unit");
  for (const char* bad : {"", "S", "10", "10x", "-1S", "123456789S", "1.5S"})
    expect_that(!ParseTimeout(bad).has_value(), std::string("refused: ") + bad);
  expect_that(FormatTimeout(1500ms) == "1500000u", "1.5 s in microseconds fits 8 digits: " + FormatTimeout(1500ms));
  expect_that(FormatTimeout(std::chrono::hours(24 * 365)) == "31536000S", "a year in seconds (8 digits at most)");
  for (auto d : {1ns, 999ns, 1001ns, 123456789ns, std::chrono::nanoseconds(30s) + 1ns}) {
    auto back = ParseTimeout(FormatTimeout(d));
    expect_that(back && *back >= d && *back - d < d / 10000000 + 1ms, "round trip never shortens: " + FormatTimeout(d));
  }
}

void test_message_encoding(void**) {
  expect_that(EncodeMessage("ok: 100% done\n") == "ok: 100%25 done%0A", EncodeMessage("ok: 100% done\n"));
  expect_that(DecodeMessage("ok: 100%25 done%0A") == "ok: 100% done\n", "decoded");
  expect_that(DecodeMessage("bad %zz %4") == "bad %zz %4", "malformed escapes kept");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  expect_that(DecodeMessage(EncodeMessage(all)) == all, "every byte round-trips");
}

void test_status_from_trailers(void**) {
  CallStatus st = StatusFromTrailers({{"grpc-status", "5"}, {"grpc-message", "not%20found"}, {"x-t", "v"},
                                      {"grpc-status-details-bin", "AAA"}},
                                     200);
  expect_that(st.code == StatusCode::kNotFound && st.message == "not found", "code and decoded message");
  expect_that(st.extra.size() == 2 && FindHeader(st.extra, "x-t") && FindHeader(st.extra, "grpc-status-details-bin"),
              "trailing metadata and details kept");
  expect_that(StatusFromTrailers({}, 503).code == StatusCode::kUnavailable, "HTTP 503 without grpc-status");
  expect_that(StatusFromTrailers({}, 200).code == StatusCode::kInternal, "no grpc-status at all");
  expect_that(StatusFromTrailers({{"grpc-status", "x"}}, 200).code == StatusCode::kUnknown, "malformed");
  HeaderList t = TrailersFor(st, false);
  expect_that(*FindHeader(t, ":status") == "200" && *FindHeader(t, "grpc-status") == "5" &&
                  *FindHeader(t, "grpc-message") == "not found" && FindHeader(t, "x-t"),
              "trailers-only form");
  expect_that(FindHeader(TrailersFor(st, true), ":status") == nullptr, "plain trailers carry no :status");
}

}  // namespace

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scanner_over_every_split),
      cmocka_unit_test(test_timeouts),
      cmocka_unit_test(test_message_encoding),
      cmocka_unit_test(test_status_from_trailers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
