// Semantic checks: a config with many mistakes reports all of them at once,
// then each check on its own.
#include "config_testing.h"

namespace praefect::config {
namespace {

using testing::CheckExpectations;
using testing::Dump;
using testing::HasProblem;

// A valid base; `top` goes before the first table, `rest` after the node.
std::string Config(const std::string& top, const std::string& rest = "") {
  return "listen_addr = '0.0.0.0:2305'\n" + top +
         "[[virtual_storage]]\nname = 'default'\n"
         "[[virtual_storage.node]]\nstorage = 'gitaly-1'\naddress = 'tcp://gitaly-1:8075'\n" +
         rest;
}

LoadResult Load(const std::string& toml) { return LoadString(toml, "praefect.toml", Environment{}); }

void TestBrokenConfigReportsEverything(void**) {
  LoadResult r = LoadFile(PRAEFECT_TESTDATA_DIR "/broken.toml", Environment{});
  check_that(!r.config.has_value(), "no config from a broken file");
  CheckExpectations(r, PRAEFECT_TESTDATA_DIR "/broken.expect");
  // Errors come first, in file order, the keyless one after those with a line.
  check_that(
      r.problems.front().severity == Severity::kError && r.problems.back().severity == Severity::kWarning,
      "errors before warnings:\n" + Dump(r));
  for (size_t i = 1; i < 13; ++i) {
    check_that(r.problems[i].line >= r.problems[i - 1].line, "errors in line order:\n" + Dump(r));
  }
  check_that(r.problems[13].line == 0, "the problem without a line is last among errors:\n" + Dump(r));
}

void TestEmptyInputIsPraefectsTwoErrors(void**) {
  LoadResult r = Load("");
  check_that(r.error_count() == 2, "two errors, as Praefect:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "", 0, 0,
                        "none of \"socket_path\", \"listen_addr\" or \"tls_listen_addr\" is set"),
             "no listener:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "virtual_storage", 0, 0,
                        "not set: expected at least one [[virtual_storage]]"),
             "no virtual storage:\n" + Dump(r));
}

void TestEachListenerIsEnough(void**) {
  const std::string vs =
      "[[virtual_storage]]\nname = 'd'\n[[virtual_storage.node]]\nstorage = 's'\naddress = 'tcp://h:1'\n";
  check_that(Load("socket_path = '/run/praefect.sock'\n" + vs).ok(), "socket_path alone");
  LoadResult tls = Load("tls_listen_addr = ':3305'\n[tls]\ncertificate_path = '/c'\nkey_path = '/k'\n" + vs);
  check_that(tls.ok() && tls.warning_count() == 0, "tls_listen_addr alone:\n" + Dump(tls));
}

void TestTls(void**) {
  LoadResult no_cert = Load(Config("tls_listen_addr = ':3305'\n"));
  check_that(HasProblem(no_cert, Severity::kError, "tls.certificate_path", 0, 0,
                        "tls_listen_addr = \":3305\" needs"),
             "tls listener without certificate:\n" + Dump(no_cert));
  LoadResult key_only = Load(Config("[tls]\nkey_path = '/k'\n"));
  check_that(
      HasProblem(key_only, Severity::kError, "tls.certificate_path", 2, 1, "no certificate to go with it"),
      "a key without a certificate, reported at [tls]:\n" + Dump(key_only));
  LoadResult both = Load(
      Config("tls_listen_addr = ':3305'\n[tls]\ncertificate_path = '/c'\nkey_path = '/k'\nkey = 'PEM'\n"));
  check_that(HasProblem(both, Severity::kError, "tls.key", 6, 1, "only one of tls.key_path and tls.key"),
             "key and key_path:\n" + Dump(both));
  LoadResult unused = Load(Config("[tls]\ncertificate_path = '/c'\nkey_path = '/k'\n"));
  check_that(unused.ok() && HasProblem(unused, Severity::kWarning, "tls", 2, 1, "tls_listen_addr is not set"),
             "an unused certificate:\n" + Dump(unused));
}

void TestVirtualStorageShape(void**) {
  LoadResult r = Load(
      "listen_addr = ':1'\n[[virtual_storage]]\nname = ' '\n[[virtual_storage]]\nname = 'b'\n"
      "[[virtual_storage.node]]\naddress = 'tcp://h:1'\n[[virtual_storage.node]]\nstorage = 's'\n");
  check_that(HasProblem(r, Severity::kError, "virtual_storage[0].name", 3, 1, "blank or empty"),
             "blank name:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "virtual_storage[0].node", 2, 1,
                        "not set: expected at least one [[virtual_storage.node]]"),
             "no nodes, reported at the [[virtual_storage]] header:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "virtual_storage[1].node[0].storage", 6, 1, "blank or empty"),
             "node without storage, at its header:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "virtual_storage[1].node[1].address", 8, 1,
                        "not set: expected the node's address"),
             "node without address:\n" + Dump(r));
}

void TestDuplicateAddressesAndPrimaries(void**) {
  LoadResult r =
      Load(Config("", "[[virtual_storage.node]]\nstorage = 'gitaly-2'\naddress = 'tcp://gitaly-1:8075'\n"));
  check_that(
      HasProblem(
          r, Severity::kError, "virtual_storage[0].node[1].address", 9, 1,
          "not unique: address \"tcp://gitaly-1:8075\" is already used in virtual storage \"default\" by "
          "virtual_storage[0].node[0].address (line 6)"),
      "a duplicate address:\n" + Dump(r));
  // The same address in two virtual storages is fine (one Gitaly, two storages).
  LoadResult two =
      Load(Config("",
                  "[[virtual_storage]]\nname = 'other'\n[[virtual_storage.node]]\nstorage = 'x'\n"
                  "address = 'tcp://gitaly-1:8075'\n"));
  check_that(two.ok(), "an address shared across virtual storages:\n" + Dump(two));
  LoadResult legacy =
      Load(Config("[failover]\nenabled = false\n",
                  "primary = true\n[[virtual_storage.node]]\nstorage = 'g2'\naddress = 'tcp://g2:1'\n"
                  "primary = true\n"));
  check_that(HasProblem(legacy, Severity::kError, "virtual_storage[0].node[1].primary", 13, 1,
                        "at most one node with primary = true"),
             "two primaries:\n" + Dump(legacy));
  check_that(legacy.warning_count() == 0, "primary = true is meaningful with failover off:\n" + Dump(legacy));
}

void TestReplicationFactor(void**) {
  std::string two_nodes =
      "listen_addr = ':1'\n[[virtual_storage]]\nname = 'd'\ndefault_replication_factor = %s\n"
      "[[virtual_storage.node]]\nstorage = 'a'\naddress = 'tcp://a:1'\n"
      "[[virtual_storage.node]]\nstorage = 'b'\naddress = 'tcp://b:1'\n";
  auto with = [&](const std::string& factor) {
    std::string s = two_nodes;
    s.replace(s.find("%s"), 2, factor);
    return Load(s);
  };
  check_that(with("2").ok() && with("0").ok(), "0 and the node count are valid");
  LoadResult three = with("3");
  check_that(HasProblem(three, Severity::kError, "virtual_storage[0].default_replication_factor", 4, 1,
                        "expected at most 2 (the number of nodes of virtual storage \"d\"), found 3"),
             "more than the nodes:\n" + Dump(three));
  LoadResult negative = with("-1");
  check_that(
      negative.ok() && HasProblem(negative, Severity::kWarning,
                                  "virtual_storage[0].default_replication_factor", 4, 1, "means every node"),
      "negative is Praefect's 'every node', with a warning:\n" + Dump(negative));
}

void TestNumbersAndIntervals(void**) {
  LoadResult r = Load(Config(
      "graceful_stop_timeout = '-5s'\n[replication]\nbatch_size = 0\nparallel_storage_processing_workers = "
      "0\n"
      "[repositories_cleanup]\ncheck_interval = '30s'\nrun_interval = '10s'\nrepositories_in_batch = 0\n"
      "[yamux]\nmaximum_stream_window_size_bytes = 1024\naccept_backlog = 0\n"
      "[reconciliation]\nhistogram_buckets = [1, 1]\nscheduling_interval = '-1m'\n[database]\nport = "
      "70000\n"));
  check_that(HasProblem(r, Severity::kError, "graceful_stop_timeout", 2, 1,
                        "expected a duration of 0 or more, found -5s"),
             "negative graceful_stop_timeout:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "replication.batch_size", 4, 1, "expected 1 or more, found 0"),
             "batch_size:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "replication.parallel_storage_processing_workers", 5, 1,
                        "expected 1 or more, found 0"),
             "workers:\n" + Dump(r));
  check_that(
      HasProblem(r, Severity::kError, "repositories_cleanup.check_interval", 7, 1, "expected at least 1m0s"),
      "check_interval:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "repositories_cleanup.run_interval", 8, 1, "found 10s"),
             "run_interval:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "repositories_cleanup.repositories_in_batch", 9, 1, "found 0"),
             "repositories_in_batch:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "yamux.maximum_stream_window_size_bytes", 11, 1, "found 1024"),
             "yamux:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "yamux.accept_backlog", 12, 1, "found 0"),
             "accept_backlog:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "reconciliation.histogram_buckets", 14, 1, "found 1 after 1"),
             "equal buckets are not strictly increasing:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "reconciliation.scheduling_interval", 15, 1,
                        "switches automatic reconciliation off"),
             "negative interval:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kError, "database.port", 17, 1, "found 70000"), "port:\n" + Dump(r));
  for (const char* size : {"1023", "1073741825"}) {
    LoadResult limits = Load(Config(std::string("[limits]\nmax_message_bytes = ") + size + "\n"));
    check_that(HasProblem(limits, Severity::kError, "limits.max_message_bytes", 3, 1,
                          std::string("expected a size in bytes from 1024 to 1073741824 (1 GiB), found ") + size),
               "max_message_bytes out of range:\n" + Dump(limits));
  }
  LoadResult off = Load(Config("[repositories_cleanup]\nrun_interval = '0'\ncheck_interval = '1s'\n"));
  check_that(off.ok(), "with run_interval 0 the cleanup is off and not checked:\n" + Dump(off));
}

void TestFailoverThresholds(void**) {
  LoadResult partial = Load(Config("[failover]\nwrite_error_threshold_count = 5\n"));
  check_that(
      HasProblem(partial, Severity::kError, "failover.error_threshold_window", 2, 1, "not set") &&
          HasProblem(partial, Severity::kError, "failover.read_error_threshold_count", 2, 1, "not set"),
      "thresholds are all or nothing:\n" + Dump(partial));
  LoadResult disabled = Load(
      Config("[failover]\nenabled = false\nwrite_error_threshold_count = 5\nelection_strategy = 'local'\n"));
  check_that(disabled.ok() && disabled.warning_count() == 0,
             "nothing checked with failover off:\n" + Dump(disabled));
  LoadResult bad = Load(Config("[failover]\nelection_strategy = 'random'\n"));
  check_that(HasProblem(bad, Severity::kError, "failover.election_strategy", 3, 1,
                        "expected one of \"per_repository\", \"sql\" or \"local\", found \"random\""),
             "an unknown strategy:\n" + Dump(bad));
  LoadResult short_window = Load(Config("[failover]\nquorum_window = '1s'\n"));
  check_that(HasProblem(short_window, Severity::kError, "failover.quorum_window", 3, 1,
                        "expected 2s to 10m0s (each praefect checks the nodes every second"),
             "a quorum window shorter than two health checks:\n" + Dump(short_window));
  LoadResult window = Load(Config("[failover]\nquorum_window = '30s'\n"));
  check_that(window.ok() && window.config->failover.quorum_window == std::chrono::seconds(30),
             "a quorum window of 30s:\n" + Dump(window));
}

void TestAuthAndTokens(void**) {
  LoadResult r = Load(Config("[auth]\ntoken = 'external'\n",
                             "token = 'external'\n[[virtual_storage.node]]\n"
                             "storage = 'g2'\naddress = 'tcp://g2:1'\n"
                             "[[virtual_storage.node]]\nstorage = 'g3'\n"
                             "address = 'tcp://g3:1'\ntoken = '  '\n"));
  check_that(HasProblem(r, Severity::kWarning, "virtual_storage[0].node[0].token", 9, 1, "equals auth.token"),
             "node token equal to auth.token:\n" + Dump(r));
  check_that(HasProblem(r, Severity::kWarning, "virtual_storage[0].node[1].token", 10, 1, "without a token"),
             "node without token while auth is on, at the node header:\n" + Dump(r));
  check_that(
      HasProblem(r, Severity::kError, "virtual_storage[0].node[2].token", 16, 1, "found only whitespace"),
      "blank token:\n" + Dump(r));
  LoadResult transitioning = Load(Config("[auth]\ntransitioning = true\n"));
  check_that(transitioning.ok() &&
                 HasProblem(transitioning, Severity::kWarning, "auth.transitioning", 3, 1, "has no effect"),
             "transitioning without a token:\n" + Dump(transitioning));
}

void TestLogLevelsAsLogrus(void**) {
  for (const char* level :
       {"trace", "debug", "info", "warn", "warning", "error", "fatal", "panic", "WARN", "Info"}) {
    LoadResult r = Load(Config(std::string("[logging]\nlevel = '") + level + "'\n"));
    check_that(r.ok(), std::string("level ") + level + " accepted:\n" + Dump(r));
  }
  LoadResult json = Load(Config("[logging]\nformat = 'JSON'\n"));
  check_that(HasProblem(json, Severity::kError, "logging.format", 3, 1,
                        "expected one of \"text\" or \"json\", found \"JSON\""),
             "format is case-sensitive, as in Praefect:\n" + Dump(json));
  for (const char* level : {"off", "trace", "debug", "info", "warn", "warning", "error", "OFF"}) {
    LoadResult r = Load(Config(std::string("[logging]\naccess_log_level = '") + level + "'\n"));
    check_that(r.ok(), std::string("access_log_level ") + level + " accepted:\n" + Dump(r));
  }
  LoadResult off = Load(Config("[logging]\naccess_log_level = 'off'\n"));
  check_that(off.ok() && off.config->logging.access_log_level == AccessLogLevel::kOff, "off:\n" + Dump(off));
  check_that(Load(Config("")).config->logging.access_log_level == AccessLogLevel::kInfo, "info by default");
  LoadResult fatal = Load(Config("[logging]\naccess_log_level = 'fatal'\n"));
  check_that(HasProblem(fatal, Severity::kError, "logging.access_log_level", 3, 1,
                        "expected one of \"off\", \"trace\", \"debug\", \"info\", \"warn\" or \"error\", found \"fatal\""),
             "access_log_level has no fatal:\n" + Dump(fatal));
}

}  // namespace
}  // namespace praefect::config

int main() {
  using namespace praefect::config;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(TestBrokenConfigReportsEverything),
      cmocka_unit_test(TestEmptyInputIsPraefectsTwoErrors),
      cmocka_unit_test(TestEachListenerIsEnough),
      cmocka_unit_test(TestTls),
      cmocka_unit_test(TestVirtualStorageShape),
      cmocka_unit_test(TestDuplicateAddressesAndPrimaries),
      cmocka_unit_test(TestReplicationFactor),
      cmocka_unit_test(TestNumbersAndIntervals),
      cmocka_unit_test(TestFailoverThresholds),
      cmocka_unit_test(TestAuthAndTokens),
      cmocka_unit_test(TestLogLevelsAsLogrus),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
