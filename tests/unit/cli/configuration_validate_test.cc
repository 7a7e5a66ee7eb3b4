// `praefect configuration validate`, both forms: Praefect's JSON on stdin
// and stdout, and the per-line report for a -config file; exit codes 0, 1, 2.
#include <stdlib.h>

#include <filesystem>
#include <sstream>

#include "cli/subcommand.h"
#include "config_testing.h"

namespace praefect::cli {
namespace {

struct Run {
  int code;
  std::string out;
  std::string err;
};

Run Validate(std::optional<std::string> config_path, const std::string& stdin_text,
             std::vector<std::string> args = {}) {
  std::istringstream in(stdin_text);
  std::ostringstream out, err;
  Invocation inv{std::move(config_path), std::move(args), in, out, err};
  int code = RunConfigurationValidate(inv);
  return Run{code, out.str(), err.str()};
}

std::string Show(const Run& r) {
  return "exit " + std::to_string(r.code) + "\nstdout:\n" + r.out + "stderr:\n" + r.err;
}

const char kValid[] =
    "listen_addr=\"localhost:1000\"\n[[virtual_storage]]\nname = \"praefect\"\n[[virtual_storage.node]]\n"
    "address = \"tcp://gitaly-internal-1.example.com:8075\"\nstorage = \"praefect-internal-1\"";

void TestStdinValid(void**) {
  Run r = Validate(std::nullopt, kValid);
  check_that(r.code == 0 && r.out.empty() && r.err.empty(), "valid input: exit 0, no output\n" + Show(r));
}

void TestStdinWarningsGoToStderr(void**) {
  Run r = Validate(std::nullopt, std::string(kValid) + "\nweight = 1\n");
  check_that(r.code == 0 && r.out.empty(), "warnings do not fail\n" + Show(r));
  check_that(
      r.err ==
          "<stdin>:7:1: warning: virtual_storage[0].node[0].weight: unknown key: praefect does not know "
          "\"virtual_storage[0].node[0].weight\" and ignores it (a typo, or a key of a newer Praefect?)\n",
      "the warning for people on stderr\n" + Show(r));
}

void TestStdinSyntaxError(void**) {
  Run r = Validate(std::nullopt,
                   "listen_addr=\"localhost:1000\"\n[failover]\nenabled = true\nelection_strategy = invalid");
  check_that(r.code == 2, "exit 2 on a TOML error\n" + Show(r));
  check_that(r.out.rfind("{\n  \"errors\": [\n    {\n      \"message\": \"line 4 column ", 0) == 0 &&
                 r.out.find("invalid TOML") != std::string::npos,
             "Praefect's JSON with the position\n" + Show(r));
}

void TestStdinValidationFailures(void**) {
  Run r = Validate(std::nullopt, "");
  check_that(r.code == 2, "exit 2\n" + Show(r));
  // Praefect's two errors in Praefect's order; our message for the second says more than "not set".
  const std::string want =
      "{\n  \"errors\": [\n    {\n"
      "      \"message\": \"none of \\\"socket_path\\\", \\\"listen_addr\\\" or \\\"tls_listen_addr\\\" is "
      "set\"\n"
      "    },\n    {\n      \"key\": [\n        \"virtual_storage\"\n      ],\n"
      "      \"message\": \"not set: expected at least one [[virtual_storage]] section with "
      "[[virtual_storage.node]] "
      "entries, found none\"\n    }\n  ]\n}\n";
  check_that(r.out == want, "Praefect's shape and keys\n" + Show(r));
}

void TestArgumentsAreRefused(void**) {
  Run r = Validate(std::nullopt, "", {"arg1", "arg2"});
  check_that(r.code == 1 && r.err == "invalid argument(s)\n" && r.out.find("USAGE:") != std::string::npos,
             "usage on stdout, exit 1, as Praefect\n" + Show(r));
}

void TestConfigFileForHumans(void**) {
  Run bad = Validate(PRAEFECT_CONFIG_TESTDATA_DIR "/broken.toml", "ignored");
  check_that(bad.code == 2 && bad.out.empty(), "exit 2, nothing on stdout\n" + Show(bad));
  std::string file = PRAEFECT_CONFIG_TESTDATA_DIR "/broken.toml";
  check_that(bad.err.rfind(file + ":2:1: error: prometheus_listen_addr: ", 0) == 0,
             "first the first error\n" + Show(bad));
  check_that(bad.err.find(file + ":35:1: error: virtual_storage[0].node[1].address: expected an address") !=
                 std::string::npos,
             "each problem with its line\n" + Show(bad));
  size_t last_error = bad.err.rfind(": error: ");
  size_t first_warning = bad.err.find(": warning: ");
  check_that(first_warning != std::string::npos && last_error < first_warning,
             "errors, then warnings\n" + Show(bad));
  check_that(bad.err.find(file + ": configuration is invalid: 14 errors, 2 warnings\n") != std::string::npos,
             "a summary line\n" + Show(bad));

  Run good = Validate(PRAEFECT_CONFIG_TESTDATA_DIR "/load/praefect_example_2022.toml", "");
  check_that(good.code == 0, "warnings only: exit 0\n" + Show(good));
  check_that(good.err.find("configuration is valid (4 warnings)\n") != std::string::npos &&
                 good.err.find(": warning: gitlab: ") != std::string::npos,
             "warnings printed, then the summary\n" + Show(good));

  Run missing = Validate(std::string("/nonexistent.toml"), "");
  check_that(missing.code == 2 &&
                 missing.err.find("/nonexistent.toml: error: cannot read the configuration file") == 0,
             "an unreadable file\n" + Show(missing));
}

}  // namespace
}  // namespace praefect::cli

namespace praefect::cli {
namespace {

// -skip-unreadable-credentials, the unit's ExecReload=: systemd 252 sets
// $CREDENTIALS_DIRECTORY there but hides the directory. A regular file stands
// for it (no open(O_DIRECTORY) accepts one, root's neither).
void TestSkipUnreadableCredentials(void**) {
  std::string dir = config::testing::MakeTempDir();
  std::string toml = dir + "/praefect.toml";
  config::testing::WriteText(toml, kValid);
  std::string hidden = dir + "/hidden-credentials";
  config::testing::WriteText(hidden, "");
  setenv("CREDENTIALS_DIRECTORY", hidden.c_str(), 1);

  Run strict = Validate(toml, "");
  check_that(strict.code == 2 && strict.err.find("cannot read the credential") != std::string::npos,
             "without the flag: an error per secret, exit 2\n" + Show(strict));

  for (const char* flag : {"-skip-unreadable-credentials", "--skip-unreadable-credentials=true"}) {
    Run r = Validate(toml, "", {flag});
    check_that(r.code == 0, std::string(flag) + ": valid\n" + Show(r));
    check_that(r.err.find(hidden + ": warning: cannot open the credentials directory ($CREDENTIALS_DIRECTORY): "
                                   "Not a directory; checked the configuration without the systemd "
                                   "credentials") == 0 &&
                   r.err.find(toml + ": configuration is valid (1 warning)\n") != std::string::npos,
               std::string(flag) + ": says what it did not check, and why\n" + Show(r));
  }
  unsetenv("CREDENTIALS_DIRECTORY");

  Run stdin_form = Validate(std::nullopt, kValid, {"-skip-unreadable-credentials"});
  check_that(stdin_form.code == 1 && stdin_form.err == "invalid argument(s)\n",
             "Praefect's stdin form takes no flag\n" + Show(stdin_form));
  Run bad_value = Validate(toml, "", {"-skip-unreadable-credentials=maybe"});
  check_that(bad_value.code == 1, "a value that is not a boolean\n" + Show(bad_value));
  std::filesystem::remove_all(dir);
}

// [[registry.method]] entries are checked by building the method registry:
// a bad entry and one that redeclares a packaged method are both named.
void TestRegistryMethodsAreValidated(void**) {
  std::string text = std::string(kValid) +
                     "\n[[registry.method]]\nname = \"/gitaly.RepositoryService/FooBar\"\n"
                     "operation = \"mutator\"\nscope = \"repository\"\n"
                     "\n[[registry.method]]\nname = \"/gitaly.RefService/FindBranch\"\n"
                     "operation = \"accessor\"\nscope = \"repository\"\ntarget_repository_field = \"1\"\n";
  Run bad = Validate(std::nullopt, text);
  check_that(bad.code == 2, "exit 2 for bad registry entries\n" + Show(bad));
  check_that(bad.out.find("FooBar") != std::string::npos && bad.out.find("target_repository_field") !=
                                                                 std::string::npos,
             "the entry without a target path named\n" + Show(bad));
  check_that(bad.out.find("FindBranch") != std::string::npos, "the redeclared packaged method named\n" + Show(bad));

  std::string good = std::string(kValid) +
                     "\n[[registry.method]]\nname = \"/gitaly.RepositoryService/FooBar\"\n"
                     "operation = \"mutator\"\nscope = \"repository\"\ntarget_repository_field = \"1\"\n";
  Run ok = Validate(std::nullopt, good);
  check_that(ok.code == 0 && ok.out.empty(), "a well-formed new method is accepted\n" + Show(ok));
}

}  // namespace
}  // namespace praefect::cli

int main() {
  using namespace praefect::cli;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestStdinValid),          cmocka_unit_test(TestStdinWarningsGoToStderr),
      cmocka_unit_test(TestStdinSyntaxError),    cmocka_unit_test(TestStdinValidationFailures),
      cmocka_unit_test(TestArgumentsAreRefused), cmocka_unit_test(TestConfigFileForHumans),
      cmocka_unit_test(TestRegistryMethodsAreValidated), cmocka_unit_test(TestSkipUnreadableCredentials),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
