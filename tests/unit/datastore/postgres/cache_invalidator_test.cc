// RepositoryCache kept fresh by PostgresCacheInvalidator against a real
// PostgreSQL: changes made by another praefect's store invalidate the cached
// entry through migration 0002's triggers, and an outage disables the cache
// until the LISTEN connection is back.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "datastore/postgres/conn_string.h"
#include "datastore/postgres/migrator.h"
#include "datastore/postgres_cache_invalidator.h"
#include "datastore/postgres_datastore.h"
#include "log/log.h"
#include "pg_harness.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::StatusOr;
using praefect::testing::PgServer;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

using Result = StatusOr<std::optional<RepositoryMetadata>>;

postgres::Deadline In(milliseconds ms) { return postgres::Clock::now() + ms; }

struct Db {
  Db() {
    name = PgServer::Shared().CreateDatabase();
    praefect::config::DatabaseConnection conn;
    conn.host = PgServer::Shared().socket_dir();
    conn.port = PgServer::Shared().port();
    conn.user = PgServer::Shared().user();
    conn.dbname = name;
    conn.sslmode = "disable";
    conninfo = postgres::ConnString(conn, milliseconds(5000));
    auto c = postgres::Connection::Open(conninfo, In(milliseconds(5000)), milliseconds(0));
    assert_status_ok(c.status());
    postgres::Migrator m(c->get(), postgres::EmbeddedMigrations(), In(milliseconds(60000)));
    assert_status_ok(m.Apply(false).status());
  }
  std::unique_ptr<PostgresDatastore> Store() {
    postgres::PoolOptions o;
    o.min_backoff = milliseconds(50);
    o.max_backoff = milliseconds(200);
    return std::make_unique<PostgresDatastore>(std::make_unique<postgres::Pool>(conninfo, o), nullptr);
  }
  std::unique_ptr<postgres::Listener> Listener() {
    return std::make_unique<postgres::Listener>(conninfo, milliseconds(5000));
  }
  std::string name;
  std::string conninfo;
};

// Log messages, to check that each transition is logged once.
class CaptureSink : public praefect::log::Sink {
 public:
  void Write(const praefect::log::Entry& e) override {
    std::lock_guard lock(mu_);
    lines_.push_back(std::string(praefect::log::LevelName(e.level)) + ": " + std::string(e.message));
  }
  int Count(const std::string& prefix) {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count_if(lines_.begin(), lines_.end(),
                                          [&](const std::string& l) { return l.starts_with(prefix); }));
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

template <typename Pred>
bool PollUntil(Pred pred, milliseconds timeout) {
  for (auto deadline = Clock::now() + timeout; Clock::now() < deadline;) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(1));
  }
  return pred();
}

NewRepository Repo(int64_t id, const std::string& rel) {
  NewRepository r;
  r.repository_id = id;
  r.virtual_storage = "default";
  r.relative_path = rel;
  r.replica_path = DeriveReplicaPath(id);
  r.primary = "gitaly-1";
  r.outdated = {"gitaly-2"};
  return r;
}

// One praefect's read path: the cache in front of its own store.
struct Reader {
  RepositoryCache cache;
  std::unique_ptr<PostgresDatastore> store;
  int loads = 0;
  Result Get(const std::string& rel) {
    return cache.Get("default", rel, [&] {
      ++loads;
      return store->GetRepository("default", rel);
    });
  }
  // Reads until a read is served from the cache (a notification of an
  // earlier change may still be on its way and invalidate a first fill).
  void Cached(const std::string& rel) {
    bool hit = PollUntil(
        [&] {
          int before = loads;
          assert_status_ok(Get(rel).status());
          return loads == before;
        },
        milliseconds(5000));
    expect_that(hit, rel + " to be served from the cache");
  }
  // After a change: polls until a read goes to the database again. Returns
  // how long that took.
  milliseconds Invalidated(const std::string& rel, const std::string& what) {
    auto start = Clock::now();
    bool loaded = PollUntil(
        [&] {
          int before = loads;
          assert_status_ok(Get(rel).status());
          return loads != before;
        },
        milliseconds(2000));
    auto took = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
    expect_that(loaded, rel + " invalidated within 2 s of " + what);
    fprintf(stderr, "%s: invalidated after %.1f ms\n", what.c_str(), static_cast<double>(took.count()) / 1000);
    return std::chrono::duration_cast<milliseconds>(took);
  }
};

void ChangesByAnotherPraefectInvalidate(void**) {
  Db db;
  auto writer = db.Store();  // the other praefect
  Reader reader;
  reader.store = db.Store();
  PostgresCacheInvalidator invalidator(&reader.cache, db.Listener(), {milliseconds(100), milliseconds(5000), {}});
  expect_that(PollUntil([&] { return invalidator.listening() && reader.cache.enabled(); }, milliseconds(10000)),
              "the invalidator to LISTEN and enable the cache");

  // Not registered yet: not cached, so its creation is seen at once.
  assert_false(reader.Get("a.git")->has_value());
  auto id = writer->ReserveRepositoryId();
  assert_status_ok(id.status());
  assert_status_ok(writer->CreateRepository(Repo(*id, "a.git")));
  auto got = reader.Get("a.git");
  assert_true(got->has_value());
  assert_int_equal((*got)->generation, 0);
  assert_status_ok(writer->CreateRepository(Repo(*id + 1, "b.git")));

  reader.Cached("a.git");
  assert_status_ok(writer->RecordWrite(Write{*id, "gitaly-1", {}, {"gitaly-2"}, "c1"}));
  reader.Invalidated("a.git", "RecordWrite (update of a generation)");
  assert_int_equal((*reader.Get("a.git"))->generation, 1);

  reader.Cached("a.git");
  assert_status_ok(writer->SetGeneration(*id, "gitaly-2", 1));  // gitaly-2 had no record: an insert
  reader.Invalidated("a.git", "SetGeneration (insert of a replica)");
  expect_that(((*reader.Get("a.git"))->UpToDate() == std::vector<std::string>{"gitaly-1", "gitaly-2"}),
              "gitaly-2 up to date in the reloaded entry");

  // A change of another repository leaves this one cached.
  reader.Cached("a.git");
  uint64_t heard = invalidator.notifications();
  assert_status_ok(writer->RecordWrite(Write{*id + 1, "gitaly-1", {}, {}, "c2"}));
  expect_that(PollUntil([&] { return invalidator.notifications() > heard; }, milliseconds(2000)),
              "a notification for b.git");
  int before = reader.loads;
  assert_status_ok(reader.Get("a.git").status());
  assert_int_equal(reader.loads, before);

  // A payload the invalidator cannot read flushes everything.
  reader.Cached("a.git");
  assert_true(PgServer::Shared().Psql(db.name, "SELECT pg_notify('repositories_updates', 'not json')"));
  reader.Invalidated("a.git", "an unparsable notification");

  // One statement over more repositories than 8000 bytes of notification
  // can name (an operator's bulk UPDATE): it commits (migration 0005; it
  // failed with "payload string too long" before) and flushes the cache.
  reader.Cached("a.git");
  assert_true(PgServer::Shared().Psql(
      db.name,
      "INSERT INTO repositories (repository_id, virtual_storage, relative_path, replica_path) "
      "SELECT 1000 + i, 'default', 'bulk/' || repeat('x', 40) || i || '.git', 'bulk-' || i "
      "FROM generate_series(1, 500) i; "
      "INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, generation) "
      "SELECT repository_id, virtual_storage, relative_path, 'gitaly-1', 0 FROM repositories "
      "WHERE relative_path LIKE 'bulk/%'; "
      "UPDATE storage_repositories SET generation = generation + 1 WHERE relative_path LIKE 'bulk/%'"));
  expect_that(PgServer::Shared().Psql(db.name,
                                      "DO $$ BEGIN IF (SELECT count(*) FROM storage_repositories WHERE relative_path "
                                      "LIKE 'bulk/%' AND generation = 1) <> 500 THEN RAISE 'not committed'; END IF; "
                                      "END $$"),
              "the bulk statements committed");
  reader.Invalidated("a.git", "a bulk UPDATE of 500 repositories (\"relative_paths\": null)");

  reader.Cached("a.git");
  auto removed = writer->DeleteRepository("default", "a.git", "gitaly-1", "c3");
  assert_status_ok(removed.status());
  reader.Invalidated("a.git", "DeleteRepository");
  assert_false(reader.Get("a.git")->has_value());
}

// Last: it stops and restarts the shared server.
void OutageDisablesTheCache(void**) {
  auto capture = std::make_shared<CaptureSink>();
  praefect::log::Default().SetSink(capture);
  Db db;
  auto writer = db.Store();
  Reader reader;
  reader.store = db.Store();
  assert_status_ok(writer->CreateRepository(Repo(1, "a.git")));
  // gitaly_praefect_notifications_reconnects_total's events.
  std::atomic<int> connected{0}, disconnected{0};
  PostgresCacheInvalidator::Options options{milliseconds(100), milliseconds(5000), {}};
  options.on_transition = [&](bool up) { (up ? connected : disconnected)++; };
  auto invalidator = std::make_unique<PostgresCacheInvalidator>(&reader.cache, db.Listener(), std::move(options));
  expect_that(PollUntil([&] { return reader.cache.enabled(); }, milliseconds(10000)), "the cache enabled");
  reader.Cached("a.git");
  assert_int_equal(capture->Count("info: reads distribution caching is enabled by configuration"), 1);
  assert_int_equal(connected.load(), 1);
  assert_int_equal(disconnected.load(), 0);

  assert_true(PgServer::Shared().Stop());
  auto down_at = Clock::now();
  expect_that(PollUntil([&] { return !reader.cache.enabled(); }, milliseconds(5000)),
              "the cache disabled once the LISTEN connection is lost");
  fprintf(stderr, "outage noticed after %lld ms\n",
          static_cast<long long>(std::chrono::duration_cast<milliseconds>(Clock::now() - down_at).count()));
  assert_int_equal(reader.cache.size(), 0);
  // Every read goes to the loader (here a stand-in: the database is down).
  int loads = 0;
  for (int i = 0; i < 3; ++i) {
    (void)reader.cache.Get("default", "a.git", [&]() -> Result {
      ++loads;
      return std::optional<RepositoryMetadata>(RepositoryMetadata{});
    });
  }
  assert_int_equal(loads, 3);
  assert_int_equal(reader.cache.size(), 0);

  assert_true(PgServer::Shared().Start());
  auto up_at = Clock::now();
  expect_that(PollUntil([&] { return reader.cache.enabled(); }, milliseconds(15000)),
              "the cache enabled again once the LISTEN connection is back");
  fprintf(stderr, "cache enabled again %lld ms after the restart\n",
          static_cast<long long>(std::chrono::duration_cast<milliseconds>(Clock::now() - up_at).count()));
  assert_int_equal(reader.cache.size(), 0);  // what was cached before the outage is gone

  // Notifications flow again: a write from the other side invalidates.
  expect_that(PollUntil([&] { return reader.Get("a.git").ok(); }, milliseconds(10000)), "the store back");
  reader.Cached("a.git");
  expect_that(PollUntil([&] { return writer->RecordWrite(Write{1, "gitaly-1", {}, {}, "c"}).ok(); },
                        milliseconds(10000)),
              "the writer's pool back");
  reader.Invalidated("a.git", "RecordWrite after the restart");
  assert_int_equal((*reader.Get("a.git"))->generation, 1);

  invalidator.reset();  // stops its thread
  assert_int_equal(connected.load(), 2);
  assert_int_equal(disconnected.load(), 1);
  assert_int_equal(capture->Count("info: reads distribution caching is enabled by configuration"), 1);
  assert_int_equal(capture->Count("warning: reads distribution cache disabled"), 1);
  assert_int_equal(capture->Count("info: reads distribution cache enabled again"), 1);
  praefect::log::Default().SetSink(std::make_shared<praefect::log::StreamSink>(2, praefect::log::Format::kText));
}

// The database is down when the invalidator starts: the cache stays
// disabled, and is enabled once the database comes up.
void StartsWhileDown(void**) {
  Db db;
  RepositoryCache cache;
  assert_true(PgServer::Shared().Stop());
  PostgresCacheInvalidator invalidator(&cache, db.Listener(), {milliseconds(100), milliseconds(1000), {}});
  assert_false(cache.enabled());
  int loads = 0;
  for (int i = 0; i < 2; ++i) {
    (void)cache.Get("default", "a.git", [&]() -> Result {
      ++loads;
      return std::optional<RepositoryMetadata>(RepositoryMetadata{});
    });
  }
  assert_int_equal(loads, 2);
  assert_true(PgServer::Shared().Start());
  expect_that(PollUntil([&] { return cache.enabled() && invalidator.listening(); }, milliseconds(15000)),
              "the cache enabled once the database is up");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ChangesByAnotherPraefectInvalidate),
      cmocka_unit_test(OutageDisablesTheCache),
      cmocka_unit_test(StartsWhileDown),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
