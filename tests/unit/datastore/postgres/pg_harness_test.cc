// The PostgreSQL test harness itself: the server starts, every test gets its
// own database, outages can be staged, and nothing is left behind.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "pg_harness.h"
#include "test_support.h"

using praefect::testing::PgServer;

namespace {

// Run first, before this process starts its own server: a child process
// starts one and exits; its atexit handler must stop the server and remove
// the directory.
void test_child_exit_removes_server_and_directory(void**) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    const std::string& dir = PgServer::Shared().socket_dir();
    if (write(fds[1], dir.data(), dir.size()) < 0) _exit(3);
    close(fds[1]);
    exit(0);  // runs atexit handlers, as a test binary's main does
  }
  close(fds[1]);
  char buf[256] = {};
  ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  expect_that(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child to start PostgreSQL and exit 0");
  assert_true(n > 0);
  std::string dir(buf, static_cast<size_t>(n));
  expect_that(!std::filesystem::exists(dir), "the harness directory " + dir + " to be removed at exit");
}

void test_fresh_database_per_call(void**) {
  PgServer& pg = PgServer::Shared();
  std::string a = pg.CreateDatabase();
  std::string b = pg.CreateDatabase();
  expect_that(a != b, "two databases with distinct names, got " + a + " twice");
  expect_that(pg.Psql(a, "CREATE TABLE t (x int)"), "a table created in " + a);
  // The table exists in a only: b is fresh.
  expect_that(pg.Psql(b, "CREATE TABLE t (x int)"), "the same table name free in " + b);
}

void test_unix_socket_only(void**) {
  PgServer& pg = PgServer::Shared();
  std::string sock = pg.socket_dir() + "/.s.PGSQL.5432";
  struct stat st;
  expect_that(stat(sock.c_str(), &st) == 0 && S_ISSOCK(st.st_mode), "a unix socket at " + sock);
  // listen_addresses is empty: the server answers on no TCP port.
  expect_that(pg.Psql("postgres", "DO $$ BEGIN IF current_setting('listen_addresses') <> '' "
                                  "THEN RAISE 'listens on TCP'; END IF; END $$"),
              "listen_addresses to be empty");
}

void test_stop_and_start_again(void**) {
  PgServer& pg = PgServer::Shared();
  std::string db = pg.CreateDatabase();
  assert_true(pg.Psql(db, "CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)"));
  assert_true(pg.Stop());
  expect_that(!pg.running(), "the server to be stopped");
  fprintf(stderr, "(a psql failure is expected next)\n");
  expect_that(!pg.Psql(db, "SELECT 1"), "psql to fail while the server is down");
  assert_true(pg.Start());
  expect_that(pg.Psql(db, "DO $$ BEGIN IF (SELECT x FROM kept) <> 42 THEN RAISE 'lost'; END IF; END $$"),
              "the data to survive the restart");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_child_exit_removes_server_and_directory),
      cmocka_unit_test(test_fresh_database_per_call),
      cmocka_unit_test(test_unix_socket_only),
      cmocka_unit_test(test_stop_and_start_again),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
