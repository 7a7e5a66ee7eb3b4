// The sql-* subcommands as an operator runs them: the praefect binary with a
// config.toml whose [database] is the harness's PostgreSQL.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "pg_harness.h"
#include "test_support.h"

using praefect::testing::PgServer;

namespace {

struct Run {
  int rc = -1;
  std::string out;
  std::string err;
};

std::string g_dir;  // configs and captured output

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Starts praefect with `args`; stdout and stderr go to files named by `tag`.
pid_t Start(const std::vector<std::string>& args, const std::string& tag) {
  pid_t pid = fork();
  if (pid == 0) {
    freopen((g_dir + "/" + tag + ".out").c_str(), "w", stdout);
    freopen((g_dir + "/" + tag + ".err").c_str(), "w", stderr);
    std::vector<char*> argv{const_cast<char*>(PRAEFECT_BINARY)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(PRAEFECT_BINARY, argv.data());
    _exit(127);
  }
  return pid;
}

Run Finish(pid_t pid, const std::string& tag) {
  int status = 0;
  waitpid(pid, &status, 0);
  Run r;
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(g_dir + "/" + tag + ".out");
  r.err = Slurp(g_dir + "/" + tag + ".err");
  return r;
}

Run Praefect(const std::vector<std::string>& args) {
  static int n = 0;
  std::string tag = "run" + std::to_string(++n);
  return Finish(Start(args, tag), tag);
}

// A config.toml for a fresh database, with `nodes` nodes gitaly-1..N in
// virtual storage "default"; returns its path, and the database's name in
// `*dbname` when given. `host` overrides the database host.
std::string FreshConfig(int nodes = 1, std::string* dbname = nullptr, const std::string& host = "") {
  static int n = 0;
  PgServer& pg = PgServer::Shared();
  std::string path = g_dir + "/config" + std::to_string(++n) + ".toml";
  std::string db = pg.CreateDatabase();
  if (dbname != nullptr) *dbname = db;
  std::ofstream f(path);
  f << "listen_addr = \"127.0.0.1:0\"\n[[virtual_storage]]\nname = \"default\"\n";
  for (int i = 1; i <= nodes; ++i)
    f << "[[virtual_storage.node]]\nstorage = \"gitaly-" << i << "\"\naddress = \"tcp://127.0.0.1:" << 9998 + i
      << "\"\n";
  f << "[database]\nhost = \"" << (host.empty() ? pg.socket_dir() : host) << "\"\nport = " << pg.port()
    << "\nuser = \"" << pg.user() << "\"\ndbname = \"" << db << "\"\nsslmode = \"disable\"\n";
  return path;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// "2006-01-02T15:04:05" (sep 'T') or "2006-01-02 15:04:05" (sep ' ').
bool IsTime(const std::string& s, char sep) {
  const std::string shape = std::string("dddd-dd-dd") + sep + "dd:dd:dd";
  if (s.size() != shape.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (shape[i] == 'd' ? !isdigit(static_cast<unsigned char>(s[i])) : s[i] != shape[i]) return false;
  }
  return true;
}

// "=  <time> <id>: migrating" / "== <time> <id>: applied (<duration>)"
bool IsStep(const std::string& line, const std::string& mark, const std::string& id, const std::string& what) {
  if (!line.starts_with(mark + " ") || line.size() < mark.size() + 21) return false;
  if (!IsTime(line.substr(mark.size() + 1, 19), 'T')) return false;
  std::string rest = line.substr(mark.size() + 21);
  if (what == "migrating") return rest == id + ": migrating";
  return rest.starts_with(id + ": applied (") && rest.ends_with("s)");
}

int AppliedCount(const std::string& out) {
  size_t at = out.find("OK (applied ");
  return at == std::string::npos ? -1 : std::atoi(out.c_str() + at + 12);
}

#define expect_run(r, code, what)                                                                  \
  expect_that((r).rc == (code), std::string(what) + ": exit " + std::to_string(code) + ", got " + \
                                    std::to_string((r).rc) + "\nstdout:\n" + (r).out + "stderr:\n" + (r).err)

void test_sql_ping_ok(void**) {
  Run r = Praefect({"-config", FreshConfig(), "sql-ping"});
  expect_run(r, 0, "sql-ping");
  expect_that(r.out == "praefect sql-ping: OK\n", "praefect sql-ping: OK, got " + r.out);
}

void test_migrate_twice(void**) {
  std::string cfg = FreshConfig();
  Run first = Praefect({"-config", cfg, "sql-migrate"});
  expect_run(first, 0, "sql-migrate");
  auto l = Lines(first.out);
  expect_that(l.size() == 24 && l[0] == "praefect sql-migrate: migrations to apply: 10" && l[1].empty() &&
                  IsStep(l[2], "= ", "0001_initial_schema", "migrating") &&
                  IsStep(l[3], "==", "0001_initial_schema", "applied") &&
                  IsStep(l[4], "= ", "0002_notify_triggers", "migrating") &&
                  IsStep(l[5], "==", "0002_notify_triggers", "applied") &&
                  IsStep(l[6], "= ", "0003_health_views", "migrating") &&
                  IsStep(l[7], "==", "0003_health_views", "applied") &&
                  IsStep(l[8], "= ", "0004_hello_world", "migrating") &&
                  IsStep(l[9], "==", "0004_hello_world", "applied") &&
                  IsStep(l[10], "= ", "0005_notify_bulk", "migrating") &&
                  IsStep(l[11], "==", "0005_notify_bulk", "applied") &&
                  IsStep(l[12], "= ", "0006_dataloss_index", "migrating") &&
                  IsStep(l[13], "==", "0006_dataloss_index", "applied") &&
                  IsStep(l[14], "= ", "0007_reconciliation", "migrating") &&
                  IsStep(l[15], "==", "0007_reconciliation", "applied") &&
                  IsStep(l[16], "= ", "0008_content_verify", "migrating") &&
                  IsStep(l[17], "==", "0008_content_verify", "applied") &&
                  IsStep(l[18], "= ", "0009_verification_leases", "migrating") &&
                  IsStep(l[19], "==", "0009_verification_leases", "applied") &&
                  IsStep(l[20], "= ", "0010_storage_cleanups", "migrating") &&
                  IsStep(l[21], "==", "0010_storage_cleanups", "applied") && l[22].empty() &&
                  l[23] == "praefect sql-migrate: OK (applied 10 migrations)",
              "Praefect's sql-migrate lines, got\n" + first.out);
  Run second = Praefect({"-config", cfg, "sql-migrate"});
  expect_run(second, 0, "sql-migrate again");
  expect_that(second.out == "praefect sql-migrate: OK (applied 0 migrations)\n", "0 applied, got " + second.out);
}

void test_migrate_verbose_prints_sql(void**) {
  Run r = Praefect({"-config", FreshConfig(), "sql-migrate", "-verbose"});
  expect_run(r, 0, "sql-migrate -verbose");
  expect_that(r.out.find("CREATE TABLE repositories (") != std::string::npos, "the migration's SQL, got " + r.out);
}

void test_migrate_status(void**) {
  std::string cfg = FreshConfig();
  Run before = Praefect({"-config", cfg, "sql-migrate-status"});
  expect_run(before, 0, "sql-migrate-status");
  // The column as wide as the longest name (0009_verification_leases).
  expect_that(before.out.find("|        MIGRATION         | APPLIED |") != std::string::npos &&
                  before.out.find("| 0001_initial_schema      | no      |") != std::string::npos,
              "the table with the migrations not applied, got\n" + before.out);
  assert_int_equal(Praefect({"-config", cfg, "sql-migrate"}).rc, 0);
  Run after = Praefect({"-config", cfg, "sql-migrate-status"});
  expect_run(after, 0, "sql-migrate-status");
  const std::string row = "| 0002_notify_triggers     | ";
  size_t at = after.out.find(row);
  std::string cell = at == std::string::npos ? "" : after.out.substr(at + row.size(), 36);
  expect_that(IsTime(cell.substr(0, 19), ' ') && cell.substr(19, 1) == "." && cell.ends_with(" +0000 UTC"),
              "an applied time, got\n" + after.out);
  fprintf(stderr, "%s", after.out.c_str());
}

void test_down_dry_run_then_force_round_trips(void**) {
  std::string cfg = FreshConfig();
  assert_int_equal(Praefect({"-config", cfg, "sql-migrate"}).rc, 0);
  Run dry = Praefect({"-config", cfg, "sql-migrate-down", "1"});
  expect_run(dry, 0, "sql-migrate-down 1");
  expect_that(dry.out ==
                  "DRY RUN -- would roll back:\n\n- 0010_storage_cleanups\n\nTo apply these migrations run with -f\n",
              "the dry run, got " + dry.out);
  Run still = Praefect({"-config", cfg, "sql-migrate"});
  expect_that(still.out == "praefect sql-migrate: OK (applied 0 migrations)\n", "a dry run to change nothing");
  Run down = Praefect({"-config", cfg, "sql-migrate-down", "-f", "1"});
  expect_run(down, 0, "sql-migrate-down -f 1");
  expect_that(down.out == "OK (applied 1 \"down\" migrations)\n", "one down migration, got " + down.out);
  Run up = Praefect({"-config", cfg, "sql-migrate"});
  expect_run(up, 0, "sql-migrate after down");
  expect_that(up.out.ends_with("praefect sql-migrate: OK (applied 1 migrations)\n") &&
                  up.out.find("0010_storage_cleanups: applied") != std::string::npos,
              "the rolled back migration applied again, got " + up.out);
  Run bad = Praefect({"-config", cfg, "sql-migrate-down"});
  expect_run(bad, 1, "sql-migrate-down without N");
  expect_that(bad.err.find("requires a single positional argument") != std::string::npos, "the usage, got " + bad.err);
  Run zero = Praefect({"-config", cfg, "sql-migrate-down", "0"});
  expect_run(zero, 1, "sql-migrate-down 0");
}

void test_concurrent_migrates_do_not_collide(void**) {
  std::string cfg = FreshConfig();
  pid_t a = Start({"-config", cfg, "sql-migrate"}, "conc-a");
  pid_t b = Start({"-config", cfg, "sql-migrate"}, "conc-b");
  Run ra = Finish(a, "conc-a");
  Run rb = Finish(b, "conc-b");
  expect_run(ra, 0, "the first concurrent sql-migrate");
  expect_run(rb, 0, "the second concurrent sql-migrate");
  int total = AppliedCount(ra.out) + AppliedCount(rb.out);
  expect_that(total == 10, "the two runs to apply 10 migrations between them, got\n" + ra.out + "---\n" + rb.out);
  // The run that waited for the lock reports what was left for it: nothing.
  const std::string idle = "praefect sql-migrate: OK (applied 0 migrations)\n";
  expect_that(ra.out == idle || rb.out == idle, "the waiting run to report 0 to apply, got\n" + ra.out + "---\n" + rb.out);
  Run status = Praefect({"-config", cfg, "sql-migrate-status"});
  expect_that(status.out.find("| no ") == std::string::npos, "every migration applied, got\n" + status.out);
}

void test_no_config(void**) {
  Run r = Praefect({"sql-ping"});
  expect_run(r, 1, "sql-ping without -config");
  expect_that(r.err == "praefect sql-ping: no configuration: run praefect -config FILE sql-ping\n", "got " + r.err);
}

void test_serve_refuses_an_outdated_schema(void**) {
  std::string cfg = FreshConfig();
  Run refused = Praefect({"-config", cfg});
  expect_run(refused, 1, "serve on an empty database");
  expect_that(refused.err.find("praefect: the database schema is outdated: 10 migration(s) not applied "
                               "(0001_initial_schema, 0002_notify_triggers, 0003_health_views, 0004_hello_world, "
                               "0005_notify_bulk, 0006_dataloss_index, 0007_reconciliation, "
                               "0008_content_verify, 0009_verification_leases, 0010_storage_cleanups); run praefect -config " +
                               cfg + " sql-migrate\n") != std::string::npos,
              "the command to run, got " + refused.err);
  assert_int_equal(Praefect({"-config", cfg, "sql-migrate"}).rc, 0);
  pid_t pid = Start({"-config", cfg}, "serve");
  bool listening = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
       !listening && std::chrono::steady_clock::now() < deadline;) {
    listening = Slurp(g_dir + "/serve.err").find("listening") != std::string::npos;
    int status = 0;
    if (!listening && waitpid(pid, &status, WNOHANG) == pid) break;
    usleep(20000);
  }
  kill(pid, SIGTERM);
  Run served = Finish(pid, "serve");
  expect_that(listening, "serve to start on a current schema, got\n" + served.err);
}

void test_set_replication_factor(void**) {
  std::string db;
  std::string cfg = FreshConfig(3, &db);
  assert_int_equal(Praefect({"-config", cfg, "sql-migrate"}).rc, 0);
  assert_true(PgServer::Shared().Psql(db, R"(
INSERT INTO repositories (repository_id, virtual_storage, relative_path, replica_path, "primary", generation)
VALUES (1, 'default', 'a.git', '@cluster/repositories/6b/86/1', 'gitaly-1', 0);
INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, generation)
VALUES (1, 'default', 'a.git', 'gitaly-1', 0), (1, 'default', 'a.git', 'gitaly-2', 0),
       (1, 'default', 'a.git', 'gitaly-3', 0);)"));
  const std::string cmd = "set-replication-factor";
  // The config's listen_addr (port 0) refuses: every call that gets past
  // its flags takes the database path, and says so first.
  const std::string p = "praefect set-replication-factor: ";
  const std::string fallback = p + "no praefect answers at 127.0.0.1:0 (the connection failed); setting the "
                                   "replication factor in the database directly instead\n";
  Run two = Praefect({"-config", cfg, cmd, "-virtual-storage", "default", "-repository", "a.git",
                      "-replication-factor", "2"});
  expect_run(two, 0, "set-replication-factor 2");
  expect_that(two.err == fallback, "no praefect answers: says so, once, got " + two.err);
  expect_that(two.out == "current assignments: gitaly-1, gitaly-2\n" ||
                  two.out == "current assignments: gitaly-1, gitaly-3\n",
              "the primary and one more, got " + two.out);
  Run three = Praefect({"-config", cfg, cmd, "--virtual-storage=default", "--relative-path", "a.git",
                        "-replication-factor=3"});
  expect_run(three, 0, "set-replication-factor 3 with -relative-path");
  expect_that(three.out == "current assignments: gitaly-1, gitaly-2, gitaly-3\n", "all three, got " + three.out);

  struct Case {
    std::vector<std::string> args;
    std::string err;  // what stderr must contain
  };
  const std::vector<Case> cases = {
      {{"-virtual-storage", "nope", "-repository", "a.git", "-replication-factor", "2"},
       fallback + p + "virtual storage \"nope\" is not configured in " + cfg + " (configured: \"default\")\n"},
      {{"-virtual-storage", "default", "-repository", "a.git", "-replication-factor", "0"},
       fallback + p + "virtual storage \"default\": replication factor 0 is too low: expected at least 1 (the primary)\n"},
      {{"-virtual-storage", "default", "-repository", "a.git", "-replication-factor", "4"},
       fallback + p + "virtual storage \"default\": replication factor 4 is higher than the 3 storages configured"},
      {{"-virtual-storage", "default", "-repository", "a.git", "-replication-factor", "two"},
       "invalid value \"two\" for flag -replication-factor"},
      {{"-virtual-storage", "default", "-repository", "missing.git", "-replication-factor", "2"},
       fallback + p + "fail: repository \"missing.git\" not found in virtual storage \"default\"\n"},
      {{"-virtual-storage", "default", "-replication-factor", "2"}, "Required flag \"relative-path\" not set\n"},
      {{"-repository", "a.git", "-replication-factor", "2"}, "Required flag \"virtual-storage\" not set\n"},
      {{"-virtual-storage", "default", "-repository", "a.git"}, "Required flag \"replication-factor\" not set\n"},
      {{"-virtual-storage", "default", "-repository"}, "flag needs an argument: -repository\n"},
      {{"-virtual-storage", "default", "-repository", "a.git", "-replication-factor", "2", "extra"},
       "set-replication-factor doesn't accept positional arguments\n"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"-config", cfg, cmd};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Run r = Praefect(args);
    expect_run(r, 1, c.err);
    expect_that(r.err.find(c.err) != std::string::npos, "stderr with " + c.err + ", got " + r.err);
  }
  expect_that(Praefect({"-config", cfg, cmd, "-virtual-storage", "default", "-repository", "a.git",
                        "-replication-factor", "3"})
                      .out == "current assignments: gitaly-1, gitaly-2, gitaly-3\n",
              "the refused calls changed nothing");

  // A database that cannot be reached: the reason and what to check.
  std::string down = FreshConfig(3, nullptr, g_dir + "/no-such-socket-dir");
  Run r = Praefect({"-config", down, cmd, "-virtual-storage", "default", "-repository", "a.git",
                    "-replication-factor", "2"});
  expect_run(r, 1, "set-replication-factor without a database");
  expect_that(r.err.starts_with(fallback + p + "fail: database unavailable: ") &&
                  r.err.ends_with("; retry once it is reachable again; if this persists, check [database] in the "
                                   "configuration and that PostgreSQL (and PgBouncer, when in between) runs\n"),
              "the reason and what to check, got " + r.err);
}

void test_replication_backlog(void**) {
  std::string db;
  std::string cfg = FreshConfig(3, &db);
  Run unmigrated = Praefect({"-config", cfg, "replication-backlog"});
  expect_run(unmigrated, 1, "replication-backlog before sql-migrate");
  expect_that(unmigrated.err == "praefect replication-backlog: fail: the database has no replication_queue table; "
                                "run praefect -config " + cfg + " sql-migrate\n",
              "what to run, got " + unmigrated.err);
  assert_int_equal(Praefect({"-config", cfg, "sql-migrate"}).rc, 0);
  Run empty = Praefect({"-config", cfg, "replication-backlog"});
  expect_run(empty, 0, "replication-backlog on an empty queue");
  expect_that(empty.out == "praefect replication-backlog: the replication queue is empty\n", "empty, got " + empty.out);
  assert_true(PgServer::Shared().Psql(db, R"(
INSERT INTO replication_queue (state, job) VALUES
  ('ready', '{"virtual_storage": "default", "target_node_storage": "gitaly-2"}'),
  ('ready', '{"virtual_storage": "default", "target_node_storage": "gitaly-2"}'),
  ('failed', '{"virtual_storage": "default", "target_node_storage": "gitaly-2"}'),
  ('dead', '{"virtual_storage": "default", "target_node_storage": "gitaly-3"}'),
  ('in_progress', '{"virtual_storage": "default", "target_node_storage": "gitaly-3"}'),
  ('completed', '{"virtual_storage": "other", "target_node_storage": "gitaly-1"}');)"));
  Run r = Praefect({"-config", cfg, "replication-backlog"});
  expect_run(r, 0, "replication-backlog");
  const std::string want =
      "VIRTUAL STORAGE  TARGET STORAGE  READY  IN_PROGRESS  FAILED  DEAD  COMPLETED  CANCELLED\n"
      "default          gitaly-2            2            0       1     0          0          0\n"
      "default          gitaly-3            0            1       0     1          0          0\n"
      "other            gitaly-1            0            0       0     0          1          0\n"
      "praefect replication-backlog: 4 job(s) to do (ready, in_progress, failed), 1 dead\n";
  expect_that(r.out == want, "the counts by target and state, got\n" + r.out);
  fprintf(stderr, "%s", r.out.c_str());
  Run extra = Praefect({"-config", cfg, "replication-backlog", "x"});
  expect_run(extra, 1, "replication-backlog with an argument");
}

// Last: stops the shared server.
void test_sql_ping_with_database_down(void**) {
  std::string cfg = FreshConfig();
  assert_true(PgServer::Shared().Stop());
  auto start = std::chrono::steady_clock::now();
  Run r = Praefect({"-config", cfg, "sql-ping"});
  auto took = std::chrono::steady_clock::now() - start;
  expect_run(r, 1, "sql-ping with the database down");
  expect_that(r.out.empty(), "nothing on stdout");
  expect_that(r.err.starts_with("praefect sql-ping: fail: database unavailable: connection to server on socket") &&
                  r.err.ends_with("; retry once it is reachable again; if this persists, check [database] in the "
                                   "configuration and that PostgreSQL (and PgBouncer, when in between) runs\n"),
              "the reason and what to check, got " + r.err);
  expect_that(took < std::chrono::seconds(5), "a quick failure");
  fprintf(stderr, "%s", r.err.c_str());
  Run m = Praefect({"-config", cfg, "sql-migrate"});
  expect_run(m, 1, "sql-migrate with the database down");
  assert_true(PgServer::Shared().Start());
  expect_run(Praefect({"-config", cfg, "sql-ping"}), 0, "sql-ping once the database is back");
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/praefect-sql-test-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  g_dir = tmpl;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sql_ping_ok),
      cmocka_unit_test(test_migrate_twice),
      cmocka_unit_test(test_migrate_verbose_prints_sql),
      cmocka_unit_test(test_migrate_status),
      cmocka_unit_test(test_down_dry_run_then_force_round_trips),
      cmocka_unit_test(test_concurrent_migrates_do_not_collide),
      cmocka_unit_test(test_no_config),
      cmocka_unit_test(test_serve_refuses_an_outdated_schema),
      cmocka_unit_test(test_set_replication_factor),
      cmocka_unit_test(test_replication_backlog),
      cmocka_unit_test(test_sql_ping_with_database_down),
  };
  int rc = cmocka_run_group_tests(tests, nullptr, nullptr);
  std::string cmd = "rm -rf " + g_dir;
  if (std::system(cmd.c_str()) != 0) fprintf(stderr, "cannot remove %s\n", g_dir.c_str());
  return rc;
}
