// `praefect configuration validate`, both forms: Praefect's JSON on stdin
// and stdout, and the per-line report for a -config file; exit codes 0, 1, 2.
#include <stdlib.h>

#include <filesystem>
#include <sstream>

#include "cli/subcommand.h"
#include "test_certificates.h"
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

// The [tls] certificate, checked against the real clock as serve checks it:
// certificates are made relative to now.
struct Certificates {
  std::string dir = config::testing::MakeTempDir();
  http2::EvpPkeyPtr key = http2::testing::NewKey();
  std::string key_path = dir + "/key.pem";

  Certificates() { config::testing::WriteText(key_path, http2::testing::ToPem(key.get())); }
  ~Certificates() { std::filesystem::remove_all(dir); }

  // A self-signed certificate for `key` valid from now+from to now+to.
  std::string Make(const std::string& name, std::chrono::hours from, std::chrono::hours to) const {
    const auto now = std::chrono::system_clock::now();
    http2::X509Ptr cert = http2::testing::Issue(
        {.common_name = "praefect.test", .not_before = now + from, .not_after = now + to}, key.get(), nullptr,
        key.get());
    std::string path = dir + "/" + name;
    config::testing::WriteText(path, http2::testing::ToPem(cert.get()));
    return path;
  }
  std::string Config(const std::string& certificate, const std::string& key_file) const {
    std::string path = dir + "/praefect.toml";
    config::testing::WriteText(path, std::string(kValid) + "\ntls_listen_addr = \"127.0.0.1:3305\"\n[tls]\n"
                                         "certificate_path = \"" + certificate + "\"\nkey_path = \"" + key_file + "\"\n");
    return path;
  }
};

bool Has(const Run& r, const std::string& text) { return r.err.find(text) != std::string::npos; }

void TestCertificateIsChecked(void**) {
  using std::chrono::hours;
  Certificates c;
  const std::string good = c.Make("good.pem", hours(-24), hours(24 * 90));
  Run ok = Validate(c.Config(good, c.key_path), "");
  check_that(ok.code == 0, "a valid certificate and its key\n" + Show(ok));

  const std::string expired = c.Make("expired.pem", hours(-24 * 90), hours(-48));
  Run r = Validate(c.Config(expired, c.key_path), "");
  check_that(r.code == 2 && Has(r, "error: tls.certificate_path \"" + expired +
                                       "\": the certificate (CN=praefect.test,O=praefect tests) expired on ") &&
                 Has(r, "install a renewed certificate (and its key) and reload praefect"),
             "an expired certificate: exit 2, the file, the date and what to do\n" + Show(r));

  const std::string future = c.Make("future.pem", hours(48), hours(24 * 90));
  r = Validate(c.Config(future, c.key_path), "");
  check_that(r.code == 2 && Has(r, "error: tls.certificate_path \"" + future + "\": the certificate") &&
                 Has(r, "is not valid before ") && Has(r, "check this machine's clock"),
             "a certificate not yet valid\n" + Show(r));

  const std::string other_key = c.dir + "/other.key";
  config::testing::WriteText(other_key, http2::testing::ToPem(http2::testing::NewKey().get()));
  r = Validate(c.Config(good, other_key), "");
  check_that(r.code == 2 && Has(r, "error: tls.key_path \"" + other_key +
                                       "\": the key does not match the certificate (CN=praefect.test,O=praefect "
                                       "tests) of tls.certificate_path \"" + good +
                                       "\": configure the key the certificate was issued for"),
             "a key that does not match\n" + Show(r));
}

// The key as systemd credential tls-key: it replaces key_path, and a
// mismatch says that systemd reads it only at start.
void TestCertificateKeyFromCredential(void**) {
  using std::chrono::hours;
  Certificates c;
  const std::string good = c.Make("good.pem", hours(-24), hours(24 * 90));
  const std::string creds = c.dir + "/credentials";
  std::filesystem::create_directory(creds);
  config::testing::WriteText(creds + "/tls-key", http2::testing::ToPem(http2::testing::NewKey().get()));
  setenv("CREDENTIALS_DIRECTORY", creds.c_str(), 1);
  // key_path names the right key: the credential wins all the same.
  Run r = Validate(c.Config(good, c.key_path), "");
  check_that(r.code == 2 && Has(r, "error: the systemd credential \"" + creds +
                                       "/tls-key\": the key does not match the certificate") &&
                 Has(r, "/etc/credstore/praefect.tls-key") && Has(r, "systemctl restart praefect"),
             "a credential that does not match\n" + Show(r));
  config::testing::WriteText(creds + "/tls-key", http2::testing::ToPem(c.key.get()));
  r = Validate(c.Config(good, c.dir + "/no-such.key"), "");
  check_that(r.code == 0, "the credential matches; key_path is not read\n" + Show(r));

  // ExecReload=: the credentials are out of reach, so the key is not
  // checked (key_path may be stale), the certificate's dates are.
  const std::string hidden = c.dir + "/hidden";
  config::testing::WriteText(hidden, "");
  setenv("CREDENTIALS_DIRECTORY", hidden.c_str(), 1);
  const std::string other_key = c.dir + "/other.key";
  config::testing::WriteText(other_key, http2::testing::ToPem(http2::testing::NewKey().get()));
  r = Validate(c.Config(good, other_key), "", {"-skip-unreadable-credentials"});
  check_that(r.code == 0, "without the credentials the key is not checked\n" + Show(r));
  const std::string expired = c.Make("expired.pem", hours(-24 * 90), hours(-48));
  r = Validate(c.Config(expired, other_key), "", {"-skip-unreadable-credentials"});
  check_that(r.code == 2 && Has(r, "expired on "), "the dates are checked all the same\n" + Show(r));
  unsetenv("CREDENTIALS_DIRECTORY");
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
      cmocka_unit_test(TestCertificateIsChecked),        cmocka_unit_test(TestCertificateKeyFromCredential),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
