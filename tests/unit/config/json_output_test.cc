// Praefect's `configuration validate` JSON, byte for byte (Gitaly's
// internal/cli/praefect/subcmd_configuration_validate_test.go shows it).
#include "common/json.h"
#include "config_testing.h"

namespace praefect::config {
namespace {

Problem Error(KeyPath key, std::string message, int line = 0, std::string file = "<stdin>") {
  return Problem{std::move(key), std::move(message), std::move(file), line, line ? 21 : 0, Severity::kError};
}

void TestPraefectShape(void**) {
  // Praefect's "validation failures" case, with its two messages.
  std::vector<Problem> problems = {
      Error({}, "none of \"socket_path\", \"listen_addr\" or \"tls_listen_addr\" is set"),
      Error({"virtual_storage"}, "not set"),
      Problem{{"frobnicate"}, "unknown key", "<stdin>", 3, 1, Severity::kWarning},
  };
  const std::string want =
      "{\n"
      "  \"errors\": [\n"
      "    {\n"
      "      \"message\": \"none of \\\"socket_path\\\", \\\"listen_addr\\\" or \\\"tls_listen_addr\\\" is "
      "set\"\n"
      "    },\n"
      "    {\n"
      "      \"key\": [\n"
      "        \"virtual_storage\"\n"
      "      ],\n"
      "      \"message\": \"not set\"\n"
      "    }\n"
      "  ]\n"
      "}\n";
  std::string got = FormatErrorsAsJson(problems, "<stdin>");
  check_that(got == want, "Praefect's bytes, warnings left out; got:\n" + got);
}

void TestNestedKeyAndSyntaxError(void**) {
  std::vector<Problem> problems = {
      Error({"virtual_storage", "[0]", "node", "[1]", "address"}, "bad"),
      Error({}, "invalid TOML: expected 'inf'", 4),
  };
  const std::string want =
      "{\n  \"errors\": [\n    {\n      \"key\": [\n        \"virtual_storage\",\n        \"[0]\",\n"
      "        \"node\",\n        \"[1]\",\n        \"address\"\n      ],\n      \"message\": \"bad\"\n    "
      "},\n"
      "    {\n      \"message\": \"line 4 column 21: invalid TOML: expected 'inf'\"\n    }\n  ]\n}\n";
  std::string got = FormatErrorsAsJson(problems, "<stdin>");
  check_that(got == want,
             "key elements one per line; syntax errors get Praefect's position prefix; got:\n" + got);
}

void TestOtherFilesNamedInMessage(void**) {
  std::vector<Problem> problems = {
      Error({}, "expected `[section]`", 3, "/etc/praefect/secrets.ini"),
      Error({"auth", "token"}, "empty", 0, "/run/credentials/praefect.service/auth-token")};
  std::string got = FormatErrorsAsJson(problems, "<stdin>");
  check_that(
      got.find("\"message\": \"/etc/praefect/secrets.ini:3: expected `[section]`\"") != std::string::npos &&
          got.find("\"message\": \"/run/credentials/praefect.service/auth-token: empty\"") !=
              std::string::npos,
      "a secrets file or credential is named in the message; got:\n" + got);
}

void TestNothingWhenNoErrors(void**) {
  check_that(FormatErrorsAsJson({}, "x").empty(), "no output without problems");
  std::vector<Problem> warnings = {Problem{{"k"}, "w", "x", 1, 1, Severity::kWarning}};
  check_that(FormatErrorsAsJson(warnings, "x").empty(),
             "no output for warnings only, as Praefect prints nothing");
}

void TestEscapingAsGo(void**) {
  struct Case {
    std::string in;
    std::string out;
  } cases[] = {
      {"plain", "\"plain\""},
      {"q\"b\\s/", "\"q\\\"b\\\\s/\""},
      {"a\nb\rc\td", "\"a\\nb\\rc\\td\""},
      {std::string("\x01\x1f", 2), "\"\\u0001\\u001f\""},
      {std::string("nul\0x", 5), "\"nul\\u0000x\""},
      {"<script>&", "\"\\u003cscript\\u003e\\u0026\""},
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
      {"\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\""},
      {"bad\xff\xfe", "\"bad\\ufffd\\ufffd\""},
      {"\xc0\xaf", "\"\\ufffd\\ufffd\""},             // overlong '/'
      {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},  // a surrogate
      {"\xe2\x82", "\"\\ufffd\\ufffd\""},             // truncated
  };
  for (const Case& c : cases) {
    std::string got = praefect::JsonQuote(c.in);
    check_that(got == c.out, "JsonQuote gives " + c.out + ", got " + got);
  }
}

}  // namespace
}  // namespace praefect::config

int main() {
  using namespace praefect::config;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestPraefectShape),
      cmocka_unit_test(TestNestedKeyAndSyntaxError),
      cmocka_unit_test(TestOtherFilesNamedInMessage),
      cmocka_unit_test(TestNothingWhenNoErrors),
      cmocka_unit_test(TestEscapingAsGo),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
