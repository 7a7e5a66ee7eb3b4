// Problems for people: key paths, one-line format, ordering.
#include "config_testing.h"

namespace praefect::config {
namespace {

void TestKeyPathToString(void**) {
  check_that(KeyPathToString({"virtual_storage", "[0]", "node", "[1]", "address"}) ==
                 "virtual_storage[0].node[1].address",
             "indices attach to their array");
  check_that(KeyPathToString({"database", "session_pooled", "host"}) == "database.session_pooled.host",
             "dotted");
  check_that(KeyPathToString({"registry", "method", "[2]"}) == "registry.method[2]", "trailing index");
  check_that(KeyPathToString({}).empty(), "empty");
}

void TestFormatForHumans(void**) {
  Problem p{{"virtual_storage", "[0]", "node", "[1]", "address"},
            "expected an address with scheme tcp://, tls://, unix: or dns:, found \"localhost:2305\"",
            "config.toml",
            12,
            3,
            Severity::kError};
  std::string want =
      "config.toml:12:3: error: virtual_storage[0].node[1].address: expected an address with scheme tcp://, "
      "tls://, "
      "unix: or dns:, found \"localhost:2305\"";
  check_that(FormatProblemForHumans(p) == want, "the full form, got: " + FormatProblemForHumans(p));
  Problem keyless{{}, "none of ... is set", "config.toml", 0, 0, Severity::kError};
  check_that(FormatProblemForHumans(keyless) == "config.toml: error: none of ... is set",
             "no line, no key: " + FormatProblemForHumans(keyless));
  Problem warning{{"auth", "tokn"}, "unknown key", "", 0, 0, Severity::kWarning};
  check_that(FormatProblemForHumans(warning) == "warning: auth.tokn: unknown key",
             FormatProblemForHumans(warning));
  Problem no_column{{"auth", "token"}, "empty", "/etc/praefect/secrets.ini", 7, 0, Severity::kError};
  check_that(FormatProblemForHumans(no_column) == "/etc/praefect/secrets.ini:7: error: auth.token: empty",
             FormatProblemForHumans(no_column));
}

void TestSortProblems(void**) {
  std::vector<Problem> problems = {
      {{"w"}, "w9", "f", 9, 1, Severity::kWarning}, {{"e"}, "e0", "f", 0, 0, Severity::kError},
      {{"e"}, "e5", "f", 5, 2, Severity::kError},   {{"w"}, "w1", "f", 1, 1, Severity::kWarning},
      {{"e"}, "e5a", "f", 5, 1, Severity::kError},
  };
  SortProblems(&problems);
  std::string order;
  for (const Problem& p : problems) order += p.message + " ";
  check_that(order == "e5a e5 e0 w1 w9 ", "errors by position, lineless last, then warnings; got " + order);
}

}  // namespace
}  // namespace praefect::config

int main() {
  using namespace praefect::config;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestKeyPathToString),
      cmocka_unit_test(TestFormatForHumans),
      cmocka_unit_test(TestSortProblems),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
