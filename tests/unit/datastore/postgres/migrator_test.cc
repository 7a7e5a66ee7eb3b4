// Schema migrations against a real PostgreSQL: apply, status, roll back,
// concurrency, and the NOTIFY triggers of the schema.
#include <thread>

#include "datastore/postgres/conn_string.h"
#include "datastore/postgres/listener.h"
#include "datastore/postgres/migrator.h"
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

std::unique_ptr<Connection> Connect(const std::string& db) {
  auto c = Connection::Open(ConnString(HarnessConn(db), milliseconds(5000)), In(milliseconds(5000)), milliseconds(0));
  assert_status_ok(c.status());
  return std::move(c).value();
}

int64_t Count(Connection& c, const std::string& sql) {
  auto r = c.Exec(sql, {}, In(milliseconds(5000)));
  assert_status_ok(r.status());
  return *r->Int64(0, 0);
}

void test_apply_twice_applies_nothing_the_second_time(void**) {
  std::string db = PgServer::Shared().CreateDatabase();
  auto conn = Connect(db);
  Migrator m(conn.get(), EmbeddedMigrations(), In(milliseconds(60000)));
  auto current = m.SchemaIsCurrent();
  assert_status_ok(current.status());
  expect_that(!*current, "a fresh database to be outdated");
  std::vector<std::string> events;
  auto first = m.Apply(false, [&](Migrator::Event e, const Migration& mig, std::chrono::nanoseconds) {
    events.push_back(std::string(e == Migrator::Event::kMigrating ? "migrating " : "applied ") + std::string(mig.id));
  });
  assert_status_ok(first.status());
  expect_that(first->size() == EmbeddedMigrations().size() && first->size() >= 2, "every embedded migration applied");
  expect_that(events.size() == 2 * first->size() && events[0] == "migrating 0001_initial_schema" &&
                  events[1] == "applied 0001_initial_schema",
              "progress before and after each migration");
  for (const char* table : {"repositories", "storage_repositories", "repository_assignments", "replication_queue",
                            "replication_queue_lock", "replication_queue_job_lock", "node_status"}) {
    expect_that(Count(*conn, std::string("SELECT count(*) FROM ") + table) == 0, std::string("table ") + table);
  }
  auto second = m.Apply(false);
  assert_status_ok(second.status());
  expect_that(second->empty(), "a rerun to apply 0 migrations");
  current = m.SchemaIsCurrent();
  expect_that(current.ok() && *current, "the schema to be current");
}

void test_status_and_unknown_migrations(void**) {
  auto conn = Connect(PgServer::Shared().CreateDatabase());
  Migrator m(conn.get(), EmbeddedMigrations(), In(milliseconds(60000)));
  auto before = m.Status();
  assert_status_ok(before.status());
  expect_that(before->size() == EmbeddedMigrations().size() && !(*before)[0].applied, "nothing applied yet");
  assert_status_ok(m.Apply(false).status());
  assert_status_ok(conn->Exec("INSERT INTO schema_migrations VALUES ('9999_from_the_future', now())", {},
                              In(milliseconds(5000)))
                       .status());
  auto st = m.Status();
  assert_status_ok(st.status());
  const MigrationState& last = st->back();
  expect_that(last.id == "9999_from_the_future" && last.unknown && last.applied, "the unknown migration listed last");
  expect_that((*st)[0].applied && (*st)[0].applied_at.ends_with(" +0000 UTC") && (*st)[0].applied_at.size() > 20,
              "an applied time, got " + (*st)[0].applied_at);
  auto strict = m.Apply(false);
  expect_that(strict.status().code() == StatusCode::kFailedPrecondition &&
                  strict.status().message().find("9999_from_the_future") != std::string::npos,
              "unknown migrations refused unless ignored, got " + strict.status().ToString());
  assert_status_ok(m.Apply(true).status());
  auto current = m.SchemaIsCurrent();
  expect_that(current.ok() && *current, "a newer praefect's migration leaves the schema current");
  auto down = m.Down(1, true);
  expect_that(down.status().code() == StatusCode::kFailedPrecondition, "no rollback of an unknown migration");
}

void test_down_then_up_round_trips(void**) {
  auto conn = Connect(PgServer::Shared().CreateDatabase());
  Migrator m(conn.get(), EmbeddedMigrations(), In(milliseconds(60000)));
  assert_status_ok(m.Apply(false).status());
  const std::string newest(EmbeddedMigrations().back().id);
  auto plan = m.Down(1, true);
  assert_status_ok(plan.status());
  expect_that(plan->size() == 1 && (*plan)[0] == newest, "the dry run to name the newest migration");
  expect_that(*m.SchemaIsCurrent(), "a dry run to change nothing");
  auto done = m.Down(1, false);
  assert_status_ok(done.status());
  expect_that(!*m.SchemaIsCurrent(), "the schema outdated after rolling back one");
  auto again = m.Apply(false);
  assert_status_ok(again.status());
  expect_that(again->size() == 1 && (*again)[0] == newest, "sql-migrate to re-apply exactly the rolled back one");
  // All the way down and up again: every down script undoes its up script.
  auto all = m.Down(100, false);
  assert_status_ok(all.status());
  expect_that(all->size() == EmbeddedMigrations().size(), "every migration rolled back");
  expect_that(Count(*conn, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> "
                           "'schema_migrations'") == 0,
              "no table left behind");
  expect_that(Count(*conn, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                           "WHERE n.nspname = 'public'") == 0,
              "no function left behind");
  auto up = m.Apply(false);
  assert_status_ok(up.status());
  expect_that(up->size() == EmbeddedMigrations().size(), "everything applied again");
}

void test_failed_migration_is_rolled_back(void**) {
  std::string db = PgServer::Shared().CreateDatabase();
  auto conn = Connect(db);
  std::vector<Migration> ms = {{"0001_ok", "CREATE TABLE a (x int);", "DROP TABLE a;"},
                               {"0002_bad", "CREATE TABLE b (x int); SELECT nonsense FROM nowhere;", "DROP TABLE b;"}};
  Migrator m(conn.get(), ms, In(milliseconds(60000)));
  auto r = m.Apply(false);
  expect_that(!r.ok() && r.status().message().starts_with("migration 0002_bad: ") &&
                  r.status().message().find("nowhere") != std::string::npos,
              "the error to name the migration and PostgreSQL's reason, got " + r.status().ToString());
  expect_that(Count(*conn, "SELECT count(*) FROM schema_migrations") == 1, "0001 recorded, 0002 not");
  expect_that(Count(*conn, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'") == 0, "0002's table rolled back");
  // The advisory lock was released although `conn` stays open: another
  // connection migrates (with the bad migration fixed) instead of blocking.
  auto other = Connect(db);
  ms[1].up = "CREATE TABLE b (x int);";
  Migrator fixed(other.get(), ms, In(milliseconds(3000)));
  auto r2 = fixed.Apply(false);
  assert_status_ok(r2.status());
  expect_that(r2->size() == 1 && (*r2)[0] == "0002_bad", "the fixed migration applied");
}

void test_concurrent_runs_do_not_collide(void**) {
  std::string db = PgServer::Shared().CreateDatabase();
  std::vector<std::thread> threads;
  std::vector<praefect::StatusOr<std::vector<std::string>>> results(4, praefect::Internal("not run"));
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      auto conn = Connection::Open(ConnString(HarnessConn(db), milliseconds(5000)), In(milliseconds(5000)),
                                   milliseconds(0));
      if (!conn.ok()) {
        results[i] = conn.status();
        return;
      }
      Migrator m(conn->get(), EmbeddedMigrations(), In(milliseconds(60000)));
      results[i] = m.Apply(false);
    });
  }
  for (auto& t : threads) t.join();
  size_t applied = 0;
  for (auto& r : results) {
    assert_status_ok(r.status());
    applied += r->size();
  }
  expect_that(applied == EmbeddedMigrations().size(), "each migration applied exactly once across the runs");
}

void test_notify_triggers(void**) {
  std::string db = PgServer::Shared().CreateDatabase();
  auto conn = Connect(db);
  Migrator m(conn.get(), EmbeddedMigrations(), In(milliseconds(60000)));
  assert_status_ok(m.Apply(false).status());
  Listener l(ConnString(HarnessConn(db), milliseconds(5000)), milliseconds(5000));
  assert_status_ok(l.Listen("repositories_updates", In(milliseconds(5000))));
  assert_status_ok(l.Listen("replication_queue_enqueued", In(milliseconds(5000))));
  auto exec = [&](const std::string& sql) { assert_status_ok(conn->Exec(sql, {}, In(milliseconds(5000))).status()); };
  auto next = [&]() -> std::vector<Notification> {
    auto n = l.Wait(milliseconds(2000));
    assert_status_ok(n.status());
    return *n;
  };
  exec("INSERT INTO repositories (virtual_storage, relative_path, replica_path, generation) "
       "VALUES ('default', 'a.git', '@cluster/repositories/6b/86/1', 0)");
  exec("INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, generation) "
       "SELECT repository_id, 'default', 'a.git', s, 0 FROM repositories, unnest(ARRAY['g1','g2']) s");
  auto n = next();
  expect_that(n.size() == 1 && n[0].channel == "repositories_updates" &&
                  n[0].payload == R"([{"relative_paths": ["a.git"], "virtual_storage": "default"}])",
              "one notification for the inserted replicas, got " + (n.empty() ? "none" : n[0].payload));
  exec("UPDATE storage_repositories SET verified_at = now()");
  n = l.Wait(milliseconds(200)).value();
  expect_that(n.empty(), "no notification when only verification changes");
  exec("UPDATE storage_repositories SET generation = 1 WHERE storage = 'g1'");
  n = next();
  expect_that(n.size() == 1 && n[0].payload.find("\"a.git\"") != std::string::npos, "a generation bump notifies");
  exec("INSERT INTO replication_queue (lock_id, job) VALUES ('default|g2|a.git', "
       "'{\"change\":\"update\",\"virtual_storage\":\"default\",\"relative_path\":\"a.git\","
       "\"source_node_storage\":\"g1\",\"target_node_storage\":\"g2\"}')");
  n = next();
  expect_that(n.size() == 1 && n[0].channel == "replication_queue_enqueued" &&
                  n[0].payload == R"([{"virtual_storage": "default", "target_node_storage": "g2"}])",
              "the enqueue notification names the target, got " + (n.empty() ? "none" : n[0].payload));
  exec("DELETE FROM repositories");
  n = next();
  // Deleting the repository cascades to its replicas: both tables notify.
  expect_that(!n.empty() && n[0].channel == "repositories_updates" && n[0].payload.find("a.git") != std::string::npos,
              "a deletion notifies");
}

void test_check_schema_for_serve(void**) {
  praefect::config::Config cfg;
  static_cast<praefect::config::DatabaseConnection&>(cfg.database) = HarnessConn(PgServer::Shared().CreateDatabase());
  praefect::Status st = CheckSchema(cfg, "/etc/praefect/config.toml");
  expect_that(st.code() == StatusCode::kFailedPrecondition &&
                  st.message().ends_with("; run praefect -config /etc/praefect/config.toml sql-migrate"),
              "an outdated schema refused with the command to run, got " + st.ToString());
  auto conn = Connect(cfg.database.dbname);
  Migrator m(conn.get(), EmbeddedMigrations(), In(milliseconds(60000)));
  assert_status_ok(m.Apply(false).status());
  assert_status_ok(CheckSchema(cfg, "/etc/praefect/config.toml"));
  cfg.database.host = "/nonexistent-socket-dir";
  st = CheckSchema(cfg, "x.toml", milliseconds(2000));
  expect_that(st.code() == StatusCode::kUnavailable && st.message().starts_with("database unavailable: "),
              "a database that cannot be reached reported as such, got " + st.ToString());
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_twice_applies_nothing_the_second_time),
      cmocka_unit_test(test_status_and_unknown_migrations),
      cmocka_unit_test(test_down_then_up_round_trips),
      cmocka_unit_test(test_failed_migration_is_rolled_back),
      cmocka_unit_test(test_concurrent_runs_do_not_collide),
      cmocka_unit_test(test_notify_triggers),
      cmocka_unit_test(test_check_schema_for_serve),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
