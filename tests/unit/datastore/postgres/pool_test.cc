// The connection pool and the LISTEN connection against a real PostgreSQL.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "datastore/postgres/conn_string.h"
#include "datastore/postgres/listener.h"
#include "datastore/postgres/pool.h"
#include "pg_harness.h"
#include "test_support.h"

using namespace praefect::datastore::postgres;
using praefect::StatusCode;
using praefect::testing::PgServer;
using std::chrono::milliseconds;

namespace {

Deadline In(milliseconds ms) { return Clock::now() + ms; }

praefect::config::DatabaseConnection HarnessConn(const std::string& db) {
  praefect::config::DatabaseConnection c;
  c.host = PgServer::Shared().socket_dir();
  c.port = PgServer::Shared().port();
  c.user = PgServer::Shared().user();
  c.dbname = db;
  c.sslmode = "disable";
  return c;
}

std::string Fresh() { return ConnString(HarnessConn(PgServer::Shared().CreateDatabase()), milliseconds(5000)); }

void test_conn_string(void**) {
  praefect::config::DatabaseConnection c;
  c.host = "/var/run/postgresql";
  c.user = "praefect";
  c.password = "it's secret";
  c.dbname = "praefect_production";
  std::string s = ConnString(c, milliseconds(1500));
  expect_that(s == "host=/var/run/postgresql user=praefect password='it\\'s secret' dbname=praefect_production "
                   "sslmode=prefer connect_timeout=2 application_name=praefect",
              "the libpq string with sslmode=prefer by default, got " + s);
  c.sslmode = "verify-full";
  c.sslrootcert = "/etc/ssl/ca.pem";
  c.port = 6432;
  std::string r = RedactedConnString(c, milliseconds(10000));
  expect_that(r.find("password=***") != std::string::npos && r.find("secret") == std::string::npos &&
                  r.find("sslmode=verify-full sslcert") == std::string::npos &&
                  r.find("port=6432") != std::string::npos && r.find("sslrootcert=/etc/ssl/ca.pem") != std::string::npos &&
                  r.find("connect_timeout=10") != std::string::npos,
              "the redacted string with the TLS keys, got " + r);
}

void test_exec_params_and_rows(void**) {
  Pool pool(Fresh(), PoolOptions{});
  auto r = pool.Exec("SELECT $1::bigint + 1 AS n, $2::text AS t, $3::text AS missing, true AS b",
                     {"41", "it's; DROP TABLE x", std::nullopt}, In(milliseconds(5000)));
  assert_status_ok(r.status());
  assert_int_equal(r->size(), 1);
  expect_that(r->columns.at(0) == "n" && *r->Int64(0, 0) == 42, "n = 42");
  expect_that(r->Text(0, 1) == "it's; DROP TABLE x", "the parameter back verbatim");
  expect_that(r->IsNull(0, 2) && !r->Int64(0, 2).ok(), "NULL for the missing parameter");
  expect_that(r->Bool(0, 3), "true");
  auto w = pool.Exec("CREATE TABLE t (k text PRIMARY KEY)", {}, In(milliseconds(5000)));
  assert_status_ok(w.status());
  auto ins = pool.Exec("INSERT INTO t VALUES ($1), ($2)", {"a", "b"}, In(milliseconds(5000)));
  assert_status_ok(ins.status());
  assert_int_equal(ins->affected, 2);
  auto dup = pool.Exec("INSERT INTO t VALUES ($1)", {"a"}, In(milliseconds(5000)));
  expect_that(dup.status().code() == StatusCode::kAlreadyExists &&
                  dup.status().message().find("23505") != std::string::npos,
              "a unique violation as ALREADY_EXISTS naming SQLSTATE 23505, got " + dup.status().ToString());
  auto bad = pool.Exec("SELECT nonsense FROM nowhere", {}, In(milliseconds(5000)));
  expect_that(bad.status().code() == StatusCode::kInternal &&
                  bad.status().message().find("relation \"nowhere\" does not exist") != std::string::npos,
              "PostgreSQL's message, got " + bad.status().ToString());
  // The connection that saw errors is still usable.
  assert_status_ok(pool.Exec("SELECT 1", {}, In(milliseconds(5000))).status());
  expect_that(pool.open_connections() == 1, "one connection reused throughout");
}

// A NUL in a parameter never truncates the value: libpq reads text
// parameters as C strings, so "legit.git\0evil" would have named
// "legit.git". The statement is refused before it reaches the server.
void test_nul_in_a_parameter_is_refused(void**) {
  Pool pool(Fresh(), PoolOptions{});
  assert_status_ok(pool.Exec("CREATE TABLE paths (p text PRIMARY KEY)", {}, In(milliseconds(5000))).status());
  assert_status_ok(pool.Exec("INSERT INTO paths VALUES ('legit.git')", {}, In(milliseconds(5000))).status());
  const std::string with_nul("legit.git\0evil", 14);
  auto del = pool.Exec("DELETE FROM paths WHERE p = $1", {"other", with_nul}, In(milliseconds(5000)));
  expect_that(del.status().code() == StatusCode::kInvalidArgument &&
                  del.status().message().find("$2 contains a NUL byte at offset 9") != std::string::npos,
              "INVALID_ARGUMENT naming the parameter and the offset, got " + del.status().ToString());
  auto ins = pool.Exec("INSERT INTO paths VALUES ($1)", {std::string("nul\0byte.git", 13)}, In(milliseconds(5000)));
  expect_that(ins.status().code() == StatusCode::kInvalidArgument, "insert refused, got " + ins.status().ToString());
  auto rows = pool.Exec("SELECT p FROM paths ORDER BY p", {}, In(milliseconds(5000)));
  assert_status_ok(rows.status());
  expect_that(rows->size() == 1 && rows->Text(0, 0) == "legit.git", "legit.git untouched and nothing else written");
  // The connection is still usable, and bytes around NUL-free values pass.
  auto echo = pool.Exec("SELECT $1::text", {"tab\there"}, In(milliseconds(5000)));
  assert_status_ok(echo.status());
  expect_that(echo->Text(0, 0) == "tab\there", "the value verbatim");
}

void test_statement_timeout(void**) {
  PoolOptions o;
  o.statement_timeout = milliseconds(200);
  Pool pool(Fresh(), o);
  auto start = Clock::now();
  auto r = pool.Exec("SELECT pg_sleep(10)", {}, In(milliseconds(10000)));
  expect_that(r.status().code() == StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED, got " + r.status().ToString());
  expect_that(Clock::now() - start < milliseconds(3000), "the statement cut off by statement_timeout");
}

void test_deadline_bounds_a_call(void**) {
  PoolOptions o;
  o.statement_timeout = milliseconds(0);
  Pool pool(Fresh(), o);
  auto start = Clock::now();
  auto r = pool.Exec("SELECT pg_sleep(10)", {}, In(milliseconds(300)));
  // The time limit is praefect's, not the client's: a database that does
  // not answer in time is unavailable, and the caller should retry.
  expect_that(r.status().code() == StatusCode::kUnavailable &&
                  r.status().message().starts_with("database unavailable: no answer within the call's time limit"),
              "UNAVAILABLE naming the database, got " + r.status().ToString());
  expect_that(Clock::now() - start < milliseconds(2000), "the call to return at its deadline");
  expect_that(pool.open_connections() == 0, "the cut-off connection to be dropped");
  assert_status_ok(pool.Exec("SELECT 1", {}, In(milliseconds(5000))).status());
}

void test_pool_size_bounds_connections(void**) {
  PoolOptions o;
  o.size = 2;
  Pool pool(Fresh(), o);
  auto a = pool.Acquire(In(milliseconds(5000)));
  auto b = pool.Acquire(In(milliseconds(5000)));
  assert_status_ok(a.status());
  assert_status_ok(b.status());
  auto c = pool.Acquire(In(milliseconds(200)));
  expect_that(c.status().code() == StatusCode::kUnavailable && c.status().message().starts_with("database busy: all 2 "),
              "a third lease to wait and time out, got " + c.status().ToString());
  std::thread giver([lease = std::move(a).value()]() mutable {
    std::this_thread::sleep_for(milliseconds(100));
    Lease gone = std::move(lease);
  });
  auto d = pool.Acquire(In(milliseconds(5000)));
  giver.join();
  assert_status_ok(d.status());
  expect_that(pool.open_connections() == 2, "two connections, no more");
}

void test_concurrent_users(void**) {
  PoolOptions o;
  o.size = 3;
  Pool pool(Fresh(), o);
  assert_status_ok(pool.Exec("CREATE TABLE c (n int)", {}, In(milliseconds(5000))).status());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (!pool.Exec("INSERT INTO c VALUES ($1)", {std::to_string(t * 100 + i)}, In(milliseconds(10000))).ok())
          ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  assert_int_equal(failures.load(), 0);
  auto n = pool.Exec("SELECT count(*) FROM c", {}, In(milliseconds(5000)));
  assert_status_ok(n.status());
  assert_int_equal(*n->Int64(0, 0), 160);
  expect_that(pool.open_connections() <= 3, "at most 3 connections");
}

void test_listen_notify(void**) {
  std::string conninfo = Fresh();
  Pool pool(conninfo, PoolOptions{});
  Listener listener(conninfo, milliseconds(5000));
  assert_status_ok(listener.Listen("repositories_updates", In(milliseconds(5000))));
  auto none = listener.Wait(milliseconds(100));
  assert_status_ok(none.status());
  expect_that(none->empty(), "nothing before a NOTIFY");
  assert_status_ok(pool.Exec("SELECT pg_notify('repositories_updates', $1)", {"{\"x\":1}"}, In(milliseconds(5000)))
                       .status());
  auto got = listener.Wait(milliseconds(5000));
  assert_status_ok(got.status());
  expect_that(got->size() == 1 && (*got)[0].channel == "repositories_updates" && (*got)[0].payload == "{\"x\":1}",
              "the notification with its payload");
}

// A server that takes the connection and never answers: a listening
// socket nobody accepts on (the kernel completes the handshake). The
// caller's deadline bounds the dial, whatever libpq's connect_timeout.
void test_unanswering_server_never_hangs_past_the_deadline(void**) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  assert_int_equal(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  assert_int_equal(listen(fd, 16), 0);
  assert_int_equal(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  praefect::config::DatabaseConnection c = HarnessConn("postgres");
  c.host = "127.0.0.1";
  c.port = ntohs(addr.sin_port);
  Pool pool(ConnString(c, milliseconds(30000)), PoolOptions{});
  auto start = Clock::now();
  auto r = pool.Exec("SELECT 1", {}, In(milliseconds(500)));
  auto took = Clock::now() - start;
  expect_that(r.status().code() == StatusCode::kUnavailable &&
                  r.status().message().starts_with("database unavailable: "),
              "UNAVAILABLE, got " + r.status().ToString());
  expect_that(took < milliseconds(1500), "the call to end by its deadline, took " +
                                             std::to_string(std::chrono::duration_cast<milliseconds>(took).count()) +
                                             " ms");
  // That was the caller's deadline, not the database's verdict: no backoff.
  start = Clock::now();
  auto again = pool.Exec("SELECT 1", {}, In(milliseconds(300)));
  expect_that(again.status().code() == StatusCode::kUnavailable && Clock::now() - start >= milliseconds(250),
              "a second full attempt, not a backoff set by the first caller's deadline");

  // connect_timeout expiring is the database's verdict: calls within the
  // backoff fail at once with the same reason.
  PoolOptions o;
  o.connect_timeout = milliseconds(300);
  o.min_backoff = milliseconds(2000);
  Pool short_dials(ConnString(c, o.connect_timeout), o);
  auto first = short_dials.Exec("SELECT 1", {}, In(milliseconds(5000)));
  expect_that(first.status().code() == StatusCode::kUnavailable, "UNAVAILABLE, got " + first.status().ToString());
  start = Clock::now();
  auto repeat = short_dials.Exec("SELECT 1", {}, In(milliseconds(5000)));
  expect_that(repeat.status().message() == first.status().message() && Clock::now() - start < milliseconds(50),
              "a fast repeat of the failure during the backoff");
  close(fd);
}

// The listener dials [database.session_pooled] (falling back to [database]),
// the pool [database].
void test_factories_use_main_and_session_connections(void**) {
  praefect::config::Database db;
  static_cast<praefect::config::DatabaseConnection&>(db) = HarnessConn(PgServer::Shared().CreateDatabase());
  db.session_pooled.host = db.host;
  db.host = "/nonexistent-main-socket-dir";
  auto pool = NewPool(db);
  auto listener = NewListener(db);
  auto r = pool->Exec("SELECT 1", {}, In(milliseconds(2000)));
  expect_that(r.status().code() == StatusCode::kUnavailable &&
                  r.status().message().find("/nonexistent-main-socket-dir") != std::string::npos,
              "the pool to dial [database] host, got " + r.status().ToString());
  assert_status_ok(listener->Listen("repositories_updates", In(milliseconds(5000))));
}

// Last: it stops and restarts the shared server.
void test_database_down_fails_fast_and_recovers(void**) {
  std::string conninfo = Fresh();
  PoolOptions o;
  o.min_backoff = milliseconds(50);
  o.max_backoff = milliseconds(200);
  Pool pool(conninfo, o);
  Listener listener(conninfo, milliseconds(5000));
  assert_status_ok(listener.Listen("replication_queue_enqueued", In(milliseconds(5000))));
  assert_status_ok(pool.Exec("SELECT 1", {}, In(milliseconds(5000))).status());

  assert_true(PgServer::Shared().Stop());
  for (int i = 0; i < 3; ++i) {
    auto start = Clock::now();
    auto r = pool.Exec("SELECT 1", {}, In(milliseconds(10000)));
    auto took = Clock::now() - start;
    expect_that(r.status().code() == StatusCode::kUnavailable, "UNAVAILABLE, got " + r.status().ToString());
    expect_that(r.status().message().starts_with("database unavailable: ") &&
                    r.status().message().ends_with(
                        "; retry once it is reachable again; if this persists, check [database] in the "
                        "configuration and that PostgreSQL (and PgBouncer, when in between) runs"),
                "the operator's message, got " + r.status().message());
    expect_that(took < milliseconds(1000), "a fast failure, not a wait for the deadline");
  }
  fprintf(stderr, "down: %s\n", pool.Exec("SELECT 1", {}, In(milliseconds(1000))).status().ToString().c_str());
  auto w = listener.Wait(milliseconds(300));
  expect_that(w.status().code() == StatusCode::kUnavailable, "the listener to report the outage");

  assert_true(PgServer::Shared().Start());
  bool recovered = false;
  for (auto deadline = In(milliseconds(10000)); Clock::now() < deadline && !recovered;) {
    recovered = pool.Exec("SELECT 1", {}, In(milliseconds(2000))).ok();
    if (!recovered) std::this_thread::sleep_for(milliseconds(20));
  }
  expect_that(recovered, "the pool to work again once PostgreSQL is back");

  // The listener re-dials and LISTENs again on its own.
  bool heard = false;
  for (auto deadline = In(milliseconds(10000)); Clock::now() < deadline && !heard;) {
    auto n = listener.Wait(milliseconds(100));
    if (!n.ok()) continue;
    if (n->empty()) {
      (void)pool.Exec("SELECT pg_notify('replication_queue_enqueued', 'again')", {}, In(milliseconds(2000)));
      continue;
    }
    heard = (*n)[0].payload == "again";
  }
  expect_that(heard, "a notification after the restart");
  expect_that(listener.TakeReconnected(), "the listener to say it reconnected (notifications may be lost)");
  expect_that(!listener.TakeReconnected(), "reconnected() only once");
}

// A restart closes every idle connection of the pool: the first statement
// after it is carried out on a fresh connection, not refused.
void test_idle_connections_closed_by_a_restart_are_not_used(void**) {
  Pool pool(Fresh(), PoolOptions{});
  {
    auto a = pool.Acquire(In(milliseconds(5000)));
    auto b = pool.Acquire(In(milliseconds(5000)));
    assert_status_ok(a.status());
    assert_status_ok(b.status());
  }
  expect_that(pool.open_connections() == 2, "two idle connections");
  assert_true(PgServer::Shared().Stop());
  assert_true(PgServer::Shared().Start());
  auto r = pool.Exec("SELECT 1", {}, In(milliseconds(5000)));
  expect_that(r.ok(), "the first statement after the restart succeeds, got " + r.status().ToString());
  expect_that(pool.open_connections() == 1, "the dead idle connections dropped, one new one");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conn_string),
      cmocka_unit_test(test_exec_params_and_rows),
      cmocka_unit_test(test_nul_in_a_parameter_is_refused),
      cmocka_unit_test(test_statement_timeout),
      cmocka_unit_test(test_deadline_bounds_a_call),
      cmocka_unit_test(test_pool_size_bounds_connections),
      cmocka_unit_test(test_concurrent_users),
      cmocka_unit_test(test_listen_notify),
      cmocka_unit_test(test_unanswering_server_never_hangs_past_the_deadline),
      cmocka_unit_test(test_factories_use_main_and_session_connections),
      cmocka_unit_test(test_database_down_fails_fast_and_recovers),
      cmocka_unit_test(test_idle_connections_closed_by_a_restart_are_not_used),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
