// Gitaly's checksum: XOR of SHA-1 over allowed "<oid> <ref>" lines, printed
// as Go's big.Int bytes.
#include "ref_checksum.h"

#include "test_support.h"

using praefect::storagenode::RefChecksum;

static void EmptyIsZeros(void**) {
  RefChecksum sum;
  assert_true(sum.empty());
  assert_string_equal(sum.Hex().c_str(), "0000000000000000000000000000000000000000");
}

static void OneLineIsItsSha1(void**) {
  RefChecksum sum;
  // printf '%s' 'x refs/heads/main' | sha1sum
  sum.AddLine("x refs/heads/main");
  assert_string_equal(sum.Hex().c_str(), "b0e41234e8e9f47d4c5f28a80d3e1edb17afe5a8");
}

static void LeadingZeroBytesDropped(void**) {
  // sha1("x refs/heads/b40") = 004bf97d...: Go's big.Int.Bytes() drops the
  // zero byte, so Gitaly prints 38 digits.
  RefChecksum sum;
  sum.AddLine("x refs/heads/b40");
  assert_string_equal(sum.Hex().c_str(), "4bf97d032ae1bb42df8f373c68664b1c575f23");
}

static void XorCancelsAndFilters(void**) {
  RefChecksum sum;
  sum.AddOutput("x refs/heads/main\nx refs/remotes/origin/main\nx refs/heads/main\n");
  // The two main lines cancel; refs/remotes is not allowed.
  assert_string_equal(sum.Hex().c_str(), "0000000000000000000000000000000000000000");
  assert_true(RefChecksum::Allowed("x HEAD"));
  assert_true(RefChecksum::Allowed("x refs/remotes/origin/HEAD"));  // unanchored, as Gitaly
  assert_true(RefChecksum::Allowed("x refs/keep-around/abc"));
  assert_false(RefChecksum::Allowed("x refs/pipelines/1"));
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(EmptyIsZeros),
      cmocka_unit_test(OneLineIsItsSha1),
      cmocka_unit_test(LeadingZeroBytesDropped),
      cmocka_unit_test(XorCancelsAndFilters),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
