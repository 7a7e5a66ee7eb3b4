// etc/config.toml.example and man/praefect.toml.5.scd against the loader:
// the example loads cleanly, and every key the loader knows is documented
// in both.
#include <sys/stat.h>

#include <filesystem>
#include <set>

#include "config_testing.h"

namespace praefect::config {
namespace {

using namespace std::chrono_literals;

using testing::Dump;
using testing::ReadText;

const std::string kExample = PRAEFECT_SOURCE_DIR "/etc/config.toml.example";
const std::string kManPage = PRAEFECT_SOURCE_DIR "/man/praefect.toml.5.scd";

// The "key" of every `key = value` line of a TOML file (comments skipped).
std::set<std::string> KeysOf(const std::string& toml) {
  std::set<std::string> keys;
  std::istringstream lines(toml);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line[0] == '[') continue;
    size_t eq = line.find(" = ");
    if (eq != std::string::npos) keys.insert(line.substr(0, eq));
  }
  return keys;
}

void TestExampleLoadsWithoutAnyProblem(void**) {
  LoadResult r = LoadFile(kExample, Environment{});
  check_that(r.problems.empty(), "no error and no warning in the example:\n" + Dump(r));
  const Config& c = *r.config;
  check_that(c.listen_addr == "127.0.0.1:2305" && c.virtual_storages.size() == 1 &&
                 c.virtual_storages[0].name == "default" && c.virtual_storages[0].nodes.size() == 3 &&
                 c.virtual_storages[0].nodes[2].address == "tcp://gitaly-3.internal:8075",
             "the example's listener (loopback: nothing public after install) and cluster");
}

void TestEveryKeyLoadsAsKnown(void**) {
  std::string dir = testing::MakeTempDir();
  std::string secrets = dir + "/secrets.ini";
  testing::WriteText(secrets, "[auth]\ntoken = from-file\n");
  ::chmod(secrets.c_str(), 0600);
  std::string toml = "secrets_file = '" + secrets + "'\n" + ReadText(PRAEFECT_TESTDATA_DIR "/every_key.toml");
  LoadResult r = LoadString(toml, "every_key.toml", Environment{});
  std::filesystem::remove_all(dir);
  check_that(r.ok(), "every key with a valid value loads:\n" + Dump(r));
  for (const Problem& p : r.problems) {
    check_that(p.message.find("unknown key") == std::string::npos,
               "every key is known: " + FormatProblemForHumans(p));
  }
  check_that(r.config->auth.token == "from-file" && r.config->replication.batch_size == 20 &&
                 r.config->database.session_pooled.sslmode == "require" &&
                 r.config->failover.monitor_interval == Duration(5s) &&
                 !r.config->background_verification.delete_invalid_records,
             "values read");
}

void TestEveryKeyIsDocumented(void**) {
  std::set<std::string> keys = KeysOf(ReadText(PRAEFECT_TESTDATA_DIR "/every_key.toml"));
  check_that(keys.size() > 60, "every_key.toml lists the keys");
  // Keys that cannot sit in one valid file together with the others.
  for (const char* extra : {"secrets_file", "virtual_storage_name", "config_command", "key"})
    keys.insert(extra);
  std::string example = ReadText(kExample);
  std::string man = ReadText(kManPage);
  for (const std::string& key : keys) {
    check_that(example.find(key + " = ") != std::string::npos, "etc/config.toml.example documents " + key);
    check_that(man.find("*" + key + "*") != std::string::npos, "praefect.toml(5) documents *" + key + "*");
  }
  for (const char* section :
       {"[auth]", "[tls]", "[logging]", "[sentry]", "[prometheus]", "[failover]", "[database]",
        "[database.session_pooled]", "[reconciliation]", "[replication]", "[background_verification]",
        "[repositories_cleanup]", "[content_verification]", "[limits]", "[backchannel]", "[yamux]", "[[virtual_storage]]", "[[virtual_storage.node]]",
        "[[registry.method]]", "[gitlab]", "[[node]]"}) {
    check_that(example.find(section) != std::string::npos, std::string("the example mentions ") + section);
    check_that(man.find(section) != std::string::npos, std::string("the man page mentions ") + section);
  }
}

}  // namespace
}  // namespace praefect::config

int main() {
  using namespace praefect::config;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestExampleLoadsWithoutAnyProblem),
      cmocka_unit_test(TestEveryKeyLoadsAsKnown),
      cmocka_unit_test(TestEveryKeyIsDocumented),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
