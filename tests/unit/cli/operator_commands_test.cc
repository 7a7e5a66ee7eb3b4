// The operator subcommands' parsing and output, with the bytes taken from
// the reference (../shared/reference/operator-commands.md), not from our
// own output: Go flag syntax and urfave/cli's errors and exit codes,
// dataloss, metadata and list-storages formats.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>

#include "cli/cli.h"
#include "cli/go_command.h"
#include "cli/operator_output.h"
#include "test_support.h"

using praefect::cli::DatalossNothingFound;
using praefect::cli::FormatDatalossMessage;
using praefect::cli::FormatMetadata;
using praefect::cli::FormatStorageTable;
using praefect::cli::GoUtcTimeString;

namespace {

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), "praefect");
  std::istringstream in;
  std::ostringstream out, err;
  int code = praefect::cli::Run(args, in, out, err);
  return {code, out.str(), err.str()};
}

// "YYYY/MM/DD HH:MM:SS <message>\n"
bool Logged(const std::string& err, const std::string& message) {
  static const std::regex ts("^[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} ");
  return std::regex_search(err, ts) && err.size() > 20 && err.substr(20) == message + "\n";
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

static void unknown_flag_prints_usage_and_logs(void**) {
  Result r = RunCli({"-config", "x.toml", "dataloss", "--frob=1"});
  assert_int_equal(r.code, 1);
  expect_that(StartsWith(r.out, "Incorrect Usage: flag provided but not defined: -frob\n\nNAME:\n   praefect dataloss - "),
              "usage on stdout: " + r.out);
  expect_that(Logged(r.err, "flag provided but not defined: -frob"), "logged error: " + r.err);
  // -config after the subcommand is not a flag of the subcommand.
  Result late = RunCli({"dataloss", "-config", "x.toml"});
  expect_that(late.code == 1 && Logged(late.err, "flag provided but not defined: -config"), "late -config: " + late.err);
}

static void required_flags_listed(void**) {
  Result r = RunCli({"-config", "x.toml", "accept-dataloss", "-virtual-storage", "default"});
  assert_int_equal(r.code, 1);
  expect_that(StartsWith(r.out, "NAME:\n   praefect accept-dataloss - "), "help on stdout: " + r.out);
  expect_that(Logged(r.err, "Required flags \"relative-path, authoritative-storage\" not set"), r.err);
  Result one = RunCli({"-config", "x.toml", "accept-dataloss", "--virtual-storage=default", "-repository", "a.git"});
  expect_that(one.code == 1 && Logged(one.err, "Required flag \"authoritative-storage\" not set"),
              "-repository is -relative-path: " + one.err);
}

static void positional_arguments(void**) {
  Result r = RunCli({"-config", "x.toml", "list-storages", "extra"});
  assert_int_equal(r.code, 1);
  expect_that(StartsWith(r.out, "NAME:\n   praefect list-storages - "), "help on stdout");
  expect_that(r.err == "list-storages doesn't accept positional arguments\n", "exit error, no timestamp: " + r.err);
  // accept-dataloss: plain, timestamped, no help.
  Result plain = RunCli({"-config", "x.toml", "accept-dataloss", "-virtual-storage", "v", "-relative-path", "r",
                         "-authoritative-storage", "s", "extra"});
  expect_that(plain.code == 1 && plain.out.empty() &&
                  Logged(plain.err, "accept-dataloss doesn't accept positional arguments"),
              "accept-dataloss positional: " + plain.err);
}

static void help_and_values(void**) {
  for (const char* h : {"-h", "--help", "-help"}) {
    Result r = RunCli({"-config", "x.toml", "metadata", h});
    expect_that(r.code == 0 && StartsWith(r.out, "NAME:\n   praefect metadata - ") && r.err.empty(),
                std::string("help for ") + h);
    expect_that(r.out.find("--repository-id value") != std::string::npos, "flags listed: " + r.out);
  }
  Result bad_int = RunCli({"-config", "x.toml", "metadata", "-repository-id", "abc"});
  expect_that(bad_int.code == 1 && Logged(bad_int.err, "invalid value \"abc\" for flag -repository-id: parse error"),
              bad_int.err);
  Result bad_bool = RunCli({"-config", "x.toml", "dataloss", "-partially-unavailable=maybe"});
  expect_that(bad_bool.code == 1 &&
                  Logged(bad_bool.err, "invalid boolean value \"maybe\" for -partially-unavailable: parse error"),
              bad_bool.err);
  Result needs = RunCli({"-config", "x.toml", "list-storages", "-virtual-storage"});
  expect_that(needs.code == 1 && Logged(needs.err, "flag needs an argument: -virtual-storage"), needs.err);
}

static void metadata_flag_combinations(void**) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"-repository-id", "1", "-virtual-storage", "v"},
       "virtual storage and relative path can't be provided with a repository ID"},
      {{"-relative-path", "r"}, "virtual storage is required with relative path"},
      {{"-virtual-storage", "v"}, "relative path is required with virtual storage"},
      {{}, "repository ID or virtual storage and relative path required"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"-config", "x.toml", "metadata"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Result r = RunCli(args);
    expect_that(r.code == 1 && Logged(r.err, c.message), "metadata: " + c.message + ", got " + r.err);
  }
}

static void remove_repository_usage(void**) {
  Result r = RunCli({"-config", "x.toml", "remove-repository", "-apply"});
  assert_int_equal(r.code, 1);
  expect_that(StartsWith(r.out, "NAME:\n   praefect remove-repository - "), "help on stdout: " + r.out);
  expect_that(Logged(r.err, "Required flags \"virtual-storage, relative-path\" not set"), r.err);
  Result bad = RunCli({"-config", "x.toml", "remove-repository", "-virtual-storage", "v", "-repository", "r",
                       "-apply=maybe"});
  expect_that(bad.code == 1 && StartsWith(bad.out, "Incorrect Usage: invalid boolean value \"maybe\" for -apply"),
              "a bad boolean: " + bad.out);
  Result help = RunCli({"-config", "x.toml", "remove-repository", "--help"});
  expect_that(help.code == 0 && help.out.find("   --db-only ") != std::string::npos &&
                  help.out.find("--relative-path, --repository value") != std::string::npos,
              "help lists the flags: " + help.out);
  // No configuration: Praefect's error, before any database or praefect.
  Result none = RunCli({"remove-repository", "-virtual-storage", "v", "-relative-path", "r"});
  expect_that(none.code == 1 && none.out.empty() &&
                  none.err.find("error reading config file: open : no such file or directory\n") != std::string::npos,
              "no -config: " + none.err);
}

static void dataloss_format(void**) {
  gitaly::DatalossResponse m;
  auto* a = m.add_repositories();
  a->set_relative_path("repository-1");
  a->set_unavailable(true);
  auto add = [](gitaly::DatalossResponse::Repository* r, const char* name, int64_t behind, bool assigned,
                bool healthy) {
    auto* s = r->add_storages();
    s->set_name(name);
    s->set_behind_by(behind);
    s->set_assigned(assigned);
    s->set_healthy(healthy);
  };
  add(a, "gitaly-1", 1, true, false);
  add(a, "gitaly-2", 2, true, true);
  add(a, "gitaly-3", 0, false, true);
  auto* b = m.add_repositories();
  b->set_relative_path("repository-2");
  b->set_primary("gitaly-1");
  add(b, "gitaly-1", 0, true, true);
  const std::string want =
      "  Repositories:\n"
      "    repository-1 (unavailable):\n"
      "      Primary: No Primary\n"
      "      In-Sync Storages:\n"
      "        gitaly-3\n"
      "      Outdated Storages:\n"
      "        gitaly-1 is behind by 1 change or less, assigned host, unhealthy\n"
      "        gitaly-2 is behind by 2 changes or less, assigned host\n"
      "    repository-2:\n"
      "      Primary: gitaly-1\n"
      "      In-Sync Storages:\n"
      "        gitaly-1, assigned host\n"
      "      Outdated Storages:\n";
  expect_that(FormatDatalossMessage(m) == want, "dataloss bytes:\n" + FormatDatalossMessage(m));
  expect_that(FormatDatalossMessage(gitaly::DatalossResponse()).empty(), "an empty message prints nothing");
  expect_that(DatalossNothingFound(false) == "  All repositories are available!\n", "nothing lost");
  expect_that(DatalossNothingFound(true) == "  All repositories are fully available on all assigned storages!\n",
              "nothing partially lost");
}

static void metadata_format(void**) {
  gitaly::GetRepositoryMetadataResponse m;
  m.set_repository_id(1);
  m.set_virtual_storage("default");
  m.set_relative_path("@hashed/ab/cd/abcd.git");
  m.set_replica_path("@cluster/repositories/6b/86/1");
  m.set_primary("gitaly-1");
  m.set_generation(3);
  auto* r1 = m.add_replicas();
  r1->set_storage("gitaly-1");
  r1->set_assigned(true);
  r1->set_generation(3);
  r1->set_healthy(true);
  r1->set_valid_primary(true);
  r1->mutable_verified_at()->set_seconds(1617271460);  // 2021-04-01 10:04:20 UTC
  auto* r2 = m.add_replicas();
  r2->set_storage("gitaly-2");
  r2->set_generation(2);
  auto* r3 = m.add_replicas();
  r3->set_storage("gitaly-3");
  r3->set_assigned(true);
  r3->set_generation(-1);
  const std::string want =
      "Repository ID: 1\n"
      "Virtual Storage: \"default\"\n"
      "Relative Path: \"@hashed/ab/cd/abcd.git\"\n"
      "Replica Path: \"@cluster/repositories/6b/86/1\"\n"
      "Primary: \"gitaly-1\"\n"
      "Generation: 3\n"
      "Replicas:\n"
      "- Storage: \"gitaly-1\"\n"
      "  Assigned: true\n"
      "  Generation: 3, fully up to date\n"
      "  Healthy: true\n"
      "  Valid Primary: true\n"
      "  Verified At: 2021-04-01 10:04:20 +0000 UTC\n"
      "- Storage: \"gitaly-2\"\n"
      "  Assigned: false\n"
      "  Generation: 2, behind by 1 changes\n"
      "  Healthy: false\n"
      "  Valid Primary: false\n"
      "  Verified At: unverified\n"
      "- Storage: \"gitaly-3\"\n"
      "  Assigned: true\n"
      "  Generation: replica not yet created\n"
      "  Healthy: false\n"
      "  Valid Primary: false\n"
      "  Verified At: unverified\n";
  expect_that(FormatMetadata(m) == want, "metadata bytes:\n" + FormatMetadata(m));
  expect_that(GoUtcTimeString(1617271460, 500000000) == "2021-04-01 10:04:20.5 +0000 UTC", "fraction trimmed");
  expect_that(GoUtcTimeString(1617271460, 123456789) == "2021-04-01 10:04:20.123456789 +0000 UTC", "nanoseconds");
}

static void storage_table_format(void**) {
  const std::string want =
      "VIRTUAL_STORAGE\tNODE    \tADDRESS              \n"
      "default        \tgitaly-1\ttcp://127.0.0.1:2305\t\n"
      "other          \tg       \tunix:/run/g.sock    \t\n";
  std::string got = FormatStorageTable({{"default", "gitaly-1", "tcp://127.0.0.1:2305"},
                                        {"other", "g", "unix:/run/g.sock"}});
  expect_that(got == want, "list-storages bytes:\n" + got);
}

static void set_replication_factor_usage(void**) {
  Result missing = RunCli({"-config", "x.toml", "set-replication-factor", "-repository", "a.git"});
  expect_that(missing.code == 1 && StartsWith(missing.out, "NAME:\n   praefect set-replication-factor - ") &&
                  Logged(missing.err, "Required flags \"virtual-storage, replication-factor\" not set"),
              "required flags: " + missing.err);
  Result word = RunCli({"-config", "x.toml", "set-replication-factor", "-virtual-storage", "default",
                        "-relative-path", "a.git", "-replication-factor", "two"});
  expect_that(word.code == 1 && word.err.find("invalid value \"two\" for flag -replication-factor") !=
                                    std::string::npos,
              "a factor that is not a number: " + word.err);
  Result extra = RunCli({"-config", "x.toml", "set-replication-factor", "-virtual-storage", "default",
                         "-relative-path", "a.git", "-replication-factor", "2", "extra"});
  expect_that(extra.code == 1 && extra.err == "set-replication-factor doesn't accept positional arguments\n",
              "positional: " + extra.err);
}

// No praefect at the configured socket: the command says so in one line and
// takes the database path, whose checks need no database to refuse these.
static void set_replication_factor_falls_back_when_no_praefect_answers(void**) {
  char dir_template[] = "/tmp/srf-test-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  const std::string cfg = dir + "/praefect.toml";
  const std::string socket = dir + "/no-praefect.sock";
  {
    std::ofstream f(cfg);
    f << "socket_path = \"" << socket << "\"\n[[virtual_storage]]\nname = \"default\"\n"
      << "[[virtual_storage.node]]\nstorage = \"gitaly-1\"\naddress = \"tcp://127.0.0.1:1\"\n"
      << "[[virtual_storage.node]]\nstorage = \"gitaly-2\"\naddress = \"tcp://127.0.0.1:2\"\n";
  }
  const std::string fallback = "praefect set-replication-factor: no praefect answers at unix:" + socket +
                               " (the connection failed); setting the replication factor in the database "
                               "directly instead\n";
  Result high = RunCli({"-config", cfg, "set-replication-factor", "-virtual-storage", "default", "-relative-path",
                        "a.git", "-replication-factor", "3"});
  expect_that(high.code == 1 && high.out.empty() &&
                  high.err == fallback + "praefect set-replication-factor: virtual storage \"default\": "
                                         "replication factor 3 is higher than the 2 storages configured for the "
                                         "virtual storage\n",
              "fallback, then the factor refused: code " + std::to_string(high.code) + ", out [" + high.out + "], err " + high.err);
  Result unknown = RunCli({"-config", cfg, "set-replication-factor", "-virtual-storage", "nope", "-relative-path",
                           "a.git", "-replication-factor", "1"});
  expect_that(unknown.code == 1 &&
                  unknown.err == fallback + "praefect set-replication-factor: virtual storage \"nope\" is not "
                                            "configured in " + cfg + " (configured: \"default\")\n",
              "fallback, then the virtual storage refused: " + unknown.err);
  std::remove(cfg.c_str());
  rmdir(dir.c_str());
}

static void reconcile_answers_as_v16_and_says_what_replaced_it(void**) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"-config", "x.toml", "reconcile"},
        std::vector<std::string>{"-config", "x.toml", "reconcile", "-virtual", "default", "-reference", "gitaly-1"}}) {
    Result r = RunCli(args);
    assert_int_equal(r.code, 1);
    expect_that(r.out.empty(), "nothing on stdout: " + r.out);
    const size_t first_line = r.err.find('\n');
    expect_that(first_line != std::string::npos &&
                    Logged(r.err.substr(0, first_line + 1), "praefect doesn't accept positional arguments"),
                "v16's line first: " + r.err);
    for (const char* said : {"removed in Praefect 14.1", "automatic\nreconciliation",
                             "reconciles automatically too", "healthy again", "dataloss -partially-unavailable",
                             "accept-dataloss -virtual-storage S"})
      expect_that(r.err.find(said) != std::string::npos, std::string("says \"") + said + "\": " + r.err);
  }
  Result usage = RunCli({"-h"});
  expect_that(usage.out.find("reconcile") == std::string::npos, "not listed as a command: " + usage.out);
}

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(unknown_flag_prints_usage_and_logs),
      cmocka_unit_test(required_flags_listed),
      cmocka_unit_test(positional_arguments),
      cmocka_unit_test(help_and_values),
      cmocka_unit_test(metadata_flag_combinations),
      cmocka_unit_test(remove_repository_usage),
      cmocka_unit_test(dataloss_format),
      cmocka_unit_test(metadata_format),
      cmocka_unit_test(storage_table_format),
      cmocka_unit_test(set_replication_factor_usage),
      cmocka_unit_test(set_replication_factor_falls_back_when_no_praefect_answers),
      cmocka_unit_test(reconcile_answers_as_v16_and_says_what_replaced_it),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
