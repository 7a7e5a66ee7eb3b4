// The loader: testdata/load/*.toml against their .expect files (real
// configurations of several Praefect eras), then parsing and typing cases.
#include <algorithm>
#include <filesystem>

#include "config_testing.h"

namespace praefect::config {
namespace {

using namespace std::chrono_literals;

using testing::CheckExpectations;
using testing::Dump;
using testing::HasProblem;

const Environment kNoCredentials{};

LoadResult Load(const std::string& toml) { return LoadString(toml, "test.toml", kNoCredentials); }

void TestTestdataConfigurations(void**) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(PRAEFECT_TESTDATA_DIR "/load")) {
    if (entry.path().extension() == ".toml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  check_that(files.size() >= 6, "at least six testdata/load/*.toml files");
  for (const auto& toml : files) {
    std::filesystem::path expect = toml;
    expect.replace_extension(".expect");
    check_that(std::filesystem::exists(expect), "an .expect file for " + toml.string());
    LoadResult r = LoadFile(toml.string(), kNoCredentials);
    for (const Problem& p : r.problems) {
      check_that(p.file == toml.string(), "problems name the file they are in: " + FormatProblemForHumans(p));
    }
    CheckExpectations(r, expect.string());
  }
}

void TestConfigOnlyWithoutErrors(void**) {
  LoadResult bad = Load("listen_addr = 1\n");
  check_that(!bad.ok() && !bad.config.has_value(), "no config when there are errors");
  LoadResult good = Load(
      "listen_addr = ':2305'\nwhatever = 1\n[[virtual_storage]]\nname = 'x'\n"
      "[[virtual_storage.node]]\nstorage = 's'\naddress = 'tcp://h:1'\n");
  check_that(good.ok() && good.config.has_value() && good.warning_count() == 1,
             "a config despite a warning:\n" + Dump(good));
}

void TestTomlSyntaxErrorHasPosition(void**) {
  LoadResult r =
      Load("listen_addr=\"localhost:1000\"\n[failover]\nenabled = true\nelection_strategy = invalid\n");
  check_that(r.error_count() == 1, "one syntax error:\n" + Dump(r));
  const Problem& p = r.problems[0];
  check_that(p.line == 4 && p.column > 1 && p.key.empty(), "the error at line 4:\n" + Dump(r));
  check_that(p.message.rfind("invalid TOML: ", 0) == 0, "a message saying the TOML is invalid: " + p.message);
}

void TestDuplicateKeyIsSyntaxError(void**) {
  LoadResult r = Load("listen_addr = 'a:1'\nlisten_addr = 'b:2'\n");
  check_that(r.error_count() == 1 && r.problems[0].line == 2,
             "a duplicate key rejected at line 2:\n" + Dump(r));
}

void TestUnreadableFile(void**) {
  LoadResult r = LoadFile("/nonexistent/praefect/config.toml", kNoCredentials);
  check_that(r.error_count() == 1, "one error");
  check_that(r.problems[0].file == "/nonexistent/praefect/config.toml" &&
                 r.problems[0].message.find("No such file or directory") != std::string::npos,
             "names the file and the reason: " + FormatProblemForHumans(r.problems[0]));
  LoadResult dir = LoadFile("/", kNoCredentials);
  check_that(dir.error_count() == 1 && dir.problems[0].message.find("directory") != std::string::npos,
             "a directory is refused: " + Dump(dir));
}

void TestDurations(void**) {
  const std::string base =
      "listen_addr = ':1'\n[[virtual_storage]]\nname = 'x'\n[[virtual_storage.node]]\nstorage = 's'\n"
      "address = 'tcp://h:1'\n";
  LoadResult zero = Load(base + "[reconciliation]\nscheduling_interval = 0\n");
  check_that(zero.ok() && zero.config->reconciliation.scheduling_interval == Duration(0),
             "integer 0 is a zero duration:\n" + Dump(zero));
  LoadResult complex = Load(base + "[background_verification]\nverification_interval = '1h30m'\n");
  check_that(complex.ok() && complex.config->background_verification.verification_interval == 90min,
             "Go duration syntax");
  LoadResult number = Load(base + "[reconciliation]\nscheduling_interval = 300\n");
  check_that(HasProblem(number, Severity::kError, "reconciliation.scheduling_interval", 8, 1,
                        "found integer 300 (Praefect would read a bare number as nanoseconds)"),
             "a bare number is refused:\n" + Dump(number));
  LoadResult float_value = Load("graceful_stop_timeout = 1.5\n" + base);
  check_that(HasProblem(float_value, Severity::kError, "graceful_stop_timeout", 1, 1, "found float 1.5"),
             "a float is refused:\n" + Dump(float_value));
  LoadResult zero_default = Load("graceful_stop_timeout = '0s'\n" + base);
  check_that(zero_default.ok() && zero_default.config->graceful_stop_timeout == 1min,
             "as in Praefect, a zero graceful_stop_timeout means the 1m default");
}

void TestWrongTypesNameExpectedAndFound(void**) {
  LoadResult r = Load(
      "listen_addr = ':1'\nauth = 'secret'\nvirtual_storage = 'x'\n[failover]\nenabled = 'yes'\n"
      "[database]\nport = '5432'\n[prometheus]\ngrpc_latency_buckets = [0.1, 'x']\n");
  check_that(HasProblem(r, Severity::kError, "auth", 2, 1, "expected a table ([auth]), found \"secret\""),
             "a string where a table belongs:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "virtual_storage", 3, 1,
                        "expected an array of tables ([[virtual_storage]] sections), found \"x\""),
             "a string where [[virtual_storage]] belongs:\n" + Dump(r));
  check_that(
      HasProblem(r, Severity::kError, "failover.enabled", 5, 1, "expected true or false, found \"yes\""),
      "a string where a boolean belongs:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "database.port", 7, 1, "expected an integer, found \"5432\""),
             "a string port:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "prometheus.grpc_latency_buckets[1]", 9, 30,
                        "expected a number, found \"x\""),
             "a bad bucket element, with its column:\n" + Dump(r));
}

void TestSecretsAreNotEchoed(void**) {
  LoadResult r = Load("listen_addr = ':1'\n[auth]\ntoken = 123456789\n[database]\npassword = 987654321\n");
  check_that(HasProblem(r, Severity::kError, "auth.token", 3, 1, "expected a string, found an integer"),
             "a wrong token type:\n" + Dump(r));
  for (const Problem& p : r.problems) {
    check_that(
        p.message.find("123456789") == std::string::npos && p.message.find("987654321") == std::string::npos,
        "secrets never appear in messages: " + p.message);
  }
}

void TestUnknownKeysEverywhere(void**) {
  LoadResult r = Load(
      "listen_addr = ':1'\n[auth]\ntokn = 'x'\n[[virtual_storage]]\nname = 'x'\nreplication_factor = 2\n"
      "[[virtual_storage.node]]\nstorage = 's'\naddress = 'tcp://h:1'\nweight = 3\n[newsection]\nkey = 1\n");
  check_that(r.ok(), "unknown keys are warnings:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "auth.tokn", 3, 1, "unknown key"), "auth.tokn:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "virtual_storage[0].replication_factor", 6, 1, "unknown key"),
             "in a virtual storage:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "virtual_storage[0].node[0].weight", 10, 1, "unknown key"),
             "in a node:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "newsection", 11, 1, "unknown key"), "a section:\n" + Dump(r));
}

void TestConfigCommandIsRefused(void**) {
  LoadResult r = Load("listen_addr = ':1'\nconfig_command = '/usr/bin/make-secrets'\n");
  check_that(HasProblem(r, Severity::kError, "config_command", 2, 1, "systemd credentials or `secrets_file`"),
             "config_command is an error that says what to use instead:\n" + Dump(r));
}

void TestLegacyListIgnoredNextToVirtualStorages(void**) {
  LoadResult r = Load(
      "listen_addr = ':1'\nvirtual_storage_name = 'old'\n[[node]]\nstorage = 'o'\naddress = 'tcp://o:1'\n"
      "[[virtual_storage]]\nname = 'new'\n[[virtual_storage.node]]\nstorage = 'n'\naddress = 'tcp://n:1'\n");
  check_that(r.ok() && r.config->virtual_storages.size() == 1 && r.config->virtual_storages[0].name == "new",
             "[[virtual_storage]] wins:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "virtual_storage_name", 2, 1, "ignored"),
             "and says so:\n" + Dump(r));
}

}  // namespace
}  // namespace praefect::config

int main() {
  using namespace praefect::config;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestTestdataConfigurations),
      cmocka_unit_test(TestConfigOnlyWithoutErrors),
      cmocka_unit_test(TestTomlSyntaxErrorHasPosition),
      cmocka_unit_test(TestDuplicateKeyIsSyntaxError),
      cmocka_unit_test(TestUnreadableFile),
      cmocka_unit_test(TestDurations),
      cmocka_unit_test(TestWrongTypesNameExpectedAndFound),
      cmocka_unit_test(TestSecretsAreNotEchoed),
      cmocka_unit_test(TestUnknownKeysEverywhere),
      cmocka_unit_test(TestConfigCommandIsRefused),
      cmocka_unit_test(TestLegacyListIgnoredNextToVirtualStorages),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
