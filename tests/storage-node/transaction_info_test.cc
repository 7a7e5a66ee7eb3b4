// The gitaly-reference-transaction metadata: base64 JSON {id, node, primary}.
#include "transaction_info.h"

#include "test_support.h"

using praefect::storagenode::EncodeTransactionInfo;
using praefect::storagenode::ParseTransactionInfo;
using praefect::storagenode::TransactionInfo;

static void ParsesWhatPraefectWrites(void**) {
  // printf '%s' '{"id":18446744073709551615,"node":"gitaly-2","primary":true}' | base64 -w0
  auto info = ParseTransactionInfo("eyJpZCI6MTg0NDY3NDQwNzM3MDk1NTE2MTUsIm5vZGUiOiJnaXRhbHktMiIsInByaW1hcnkiOnRydWV9");
  assert_status_ok(info.status());
  assert_true(info->id == 18446744073709551615ull);
  assert_string_equal(info->node.c_str(), "gitaly-2");
  assert_true(info->primary);
  // Gitaly's own form carries backchannel_id: ignored.
  // {"backchannel_id":3,"primary":false,"node":"n","id":7}
  info = ParseTransactionInfo("eyJiYWNrY2hhbm5lbF9pZCI6MywicHJpbWFyeSI6ZmFsc2UsIm5vZGUiOiJuIiwiaWQiOjd9");
  assert_status_ok(info.status());
  assert_true(info->id == 7);
  assert_string_equal(info->node.c_str(), "n");
  assert_false(info->primary);
}

static void RoundTrips(void**) {
  for (bool primary : {true, false}) {
    TransactionInfo in{42, "st\"orage", primary};
    auto out = ParseTransactionInfo(EncodeTransactionInfo(in));
    assert_status_ok(out.status());
    assert_true(out->id == 42);
    assert_string_equal(out->node.c_str(), "st\"orage");
    assert_true(out->primary == primary);
  }
  // praefect's exact bytes: compact, keys in order id, node, primary.
  assert_string_equal(EncodeTransactionInfo({1, "a", true}).c_str(), "eyJpZCI6MSwibm9kZSI6ImEiLCJwcmltYXJ5Ijp0cnVlfQ==");
}

static void RefusesBadInput(void**) {
  struct Case {
    const char* header;
    const char* want;
  } cases[] = {
      {"abc", "not a multiple of 4"},
      {"W10=", "expected an object"},                               // []
      {"eyJub2RlIjoibiJ9", "must have \"id\" and \"node\""},          // {"node":"n"}
      {"eyJpZCI6LTF9", "expected an unsigned integer"},              // {"id":-1}
      {"eyJpZCI6MS41fQ==", "a fraction"},                            // {"id":1.5}
      {"eyJpZCI6MTg0NDY3NDQwNzM3MDk1NTE2MTZ9", "out of the range"},  // {"id":18446744073709551616}
      {"eyJpZCI6MSwibm9kZSI6Im4iLCJwcmltYXJ5IjoxfQ==", "true or false"},  // {"id":1,"node":"n","primary":1}
  };
  for (const auto& c : cases) {
    auto out = ParseTransactionInfo(c.header);
    expect_that(!out.ok(), std::string("accepted ") + c.header);
    expect_that(out.status().message().find(c.want) != std::string::npos,
                std::string(c.header) + ": " + out.status().message());
    expect_that(out.status().message().find("gitaly-reference-transaction") != std::string::npos,
                "the message names the header: " + out.status().message());
  }
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ParsesWhatPraefectWrites),
      cmocka_unit_test(RoundTrips),
      cmocka_unit_test(RefusesBadInput),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
