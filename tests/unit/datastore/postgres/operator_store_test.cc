// PostgresDatastore as the OperatorStore, against a real PostgreSQL: the
// dataloss selection and per-replica view (assigned, healthy, valid
// primary), accept-dataloss and MarkUnverified.
#include <random>
#include <set>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::StatusCode;
using praefect::testing::TestDb;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kWindow{10000};
const ConfiguredStorages kConfigured = {{"default", "gitaly-1"}, {"default", "gitaly-2"}, {"default", "gitaly-3"}};

// One praefect saw every node healthy but those in `down`.
void Health(PostgresDatastore& store, const std::set<std::string>& down) {
  std::vector<NodeHealth> checks;
  for (const auto& [vs, s] : kConfigured) checks.push_back(NodeHealth{vs, s, down.count(s) == 0});
  assert_status_ok(store.RecordHealth("p1", checks));
}

// A repository on gitaly-1 (primary) and gitaly-2 at generation 1, gitaly-3
// at generation 0 unless `on_third` is false (no replica there).
int64_t Repo(PostgresDatastore& store, const std::string& rel, bool on_third = true,
             std::vector<std::string> assigned = {}) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  NewRepository r{*id, "default", rel, DeriveReplicaPath(*id), "gitaly-1", {}, "", std::move(assigned)};
  assert_status_ok(store.CreateRepository(r));
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 0));
  if (on_third) assert_status_ok(store.SetGeneration(*id, "gitaly-3", 0));
  assert_status_ok(store.RecordWrite(Write{*id, "gitaly-1", {"gitaly-2"}, {}, ""}));
  return *id;
}

std::string Describe(const RepositoryStatus& r) {
  std::string out = r.relative_path + " primary=" + r.primary + " gen=" + std::to_string(r.generation) +
                    (r.Unavailable() ? " unavailable" : "") + ":";
  for (const auto& s : r.replicas)
    out += " " + s.storage + "/" + std::to_string(s.generation) + (s.assigned ? "/a" : "") +
           (s.healthy ? "/h" : "") + (s.valid_primary ? "/v" : "");
  return out;
}

std::string DescribeAll(const std::vector<RepositoryStatus>& repos) {
  std::string out;
  for (const auto& r : repos) out += Describe(r) + "\n";
  return out;
}

void DatalossListsOutdatedAndUnavailable(void**) {
  TestDb db;
  auto store = db.Store();
  Health(*store, {"gitaly-3"});
  Repo(*store, "a.git");                 // gitaly-3 behind by 1 (and unhealthy)
  int64_t b = Repo(*store, "b.git", false);  // gitaly-3 has no replica: behind by 2
  int64_t c = Repo(*store, "c.git");
  // c.git: only gitaly-3 (down) has the latest generation: unavailable.
  assert_status_ok(store->SetGeneration(c, "gitaly-3", 2));
  expect_that(db.Scalar("UPDATE repositories SET generation = 2 WHERE repository_id = " + std::to_string(c) +
                        " RETURNING 'ok'") == "ok",
              "c.git at generation 2");
  // Up to date everywhere, but gitaly-3 is down: its replica is not a
  // valid primary, so d.git is partially unavailable too.
  int64_t d = Repo(*store, "d.git");
  assert_status_ok(store->SetGeneration(d, "gitaly-3", 1));

  auto all = store->ListDataloss("default", true, kConfigured, kWindow);
  assert_status_ok(all.status());
  const std::string want_all =
      "a.git primary=gitaly-1 gen=1: gitaly-1/1/a/h/v gitaly-2/1/a/h/v gitaly-3/0/a\n"
      "b.git primary=gitaly-1 gen=1: gitaly-1/1/a/h/v gitaly-2/1/a/h/v gitaly-3/-1/a\n"
      "c.git primary=gitaly-1 gen=2 unavailable: gitaly-1/1/a/h gitaly-2/1/a/h gitaly-3/2/a\n"
      "d.git primary=gitaly-1 gen=1: gitaly-1/1/a/h/v gitaly-2/1/a/h/v gitaly-3/1/a\n";
  expect_that(DescribeAll(*all) == want_all, "partially unavailable: got\n" + DescribeAll(*all));
  auto unavailable = store->ListDataloss("default", false, kConfigured, kWindow);
  assert_status_ok(unavailable.status());
  expect_that(DescribeAll(*unavailable) ==
                  "c.git primary=gitaly-1 gen=2 unavailable: gitaly-1/1/a/h gitaly-2/1/a/h gitaly-3/2/a\n",
              "only unavailable: got\n" + DescribeAll(*unavailable));

  // Explicit assignments: b.git on gitaly-1 and gitaly-2 only is whole.
  expect_that(db.Scalar("INSERT INTO repository_assignments SELECT repository_id, virtual_storage, relative_path, s "
                        "FROM repositories, unnest('{gitaly-1,gitaly-2}'::text[]) s WHERE repository_id = " +
                        std::to_string(b) + " RETURNING 'ok'") == "ok",
              "b.git assigned");
  all = store->ListDataloss("default", true, kConfigured, kWindow);
  assert_status_ok(all.status());
  expect_that(DescribeAll(*all).find("b.git") == std::string::npos, "b.git no longer listed:\n" + DescribeAll(*all));
  // gitaly-3 back: d.git is whole.
  Health(*store, {});
  all = store->ListDataloss("default", true, kConfigured, kWindow);
  assert_status_ok(all.status());
  expect_that(DescribeAll(*all).find("d.git") == std::string::npos, "d.git no longer listed:\n" + DescribeAll(*all));

  // accept-dataloss: gitaly-2 becomes authoritative for c.git.
  assert_status_ok(store->SetAuthoritativeStorage("default", "c.git", "gitaly-2"));
  auto meta = store->GetRepositoryStatus(RepositoryKey{c, "", ""}, kConfigured, kWindow);
  assert_status_ok(meta.status());
  assert_true(meta->has_value());
  expect_that(Describe(**meta) == "c.git primary=gitaly-1 gen=3: gitaly-1/1/a/h gitaly-2/3/a/h/v gitaly-3/2/a/h",
              "gitaly-2 authoritative: " + Describe(**meta));
  expect_that(db.Scalar("SELECT count(*) FROM replication_queue WHERE job->>'relative_path' = 'c.git'") == "0",
              "accept-dataloss queues no job");
  expect_that(store->SetAuthoritativeStorage("default", "nope.git", "gitaly-2").code() == StatusCode::kNotFound,
              "an unknown repository is NOT_FOUND");
}

// ForEachDataloss picks the repositories to judge with a cheap query
// (DatalossSuspectsSql) and judges them with the per-replica view: over
// random states (generations, missing replicas, NULL generations, explicit
// assignments, also to a storage not configured, replicas on one, replicas
// being deleted, unhealthy storages) and pages of 7 repositories, it lists
// exactly the repositories the view alone finds with an assigned replica
// that is not a valid primary.
void DatalossMatchesTheViewOfEveryRepository(void**) {
  TestDb db;
  auto store = db.Store();
  store->SetDatalossPage(7);
  std::mt19937 rng(20261204);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> storages = {"gitaly-1", "gitaly-2", "gitaly-3", "gitaly-9"};  // 9: not configured
  std::string sql;
  for (int i = 1; i <= 150; ++i) {
    const std::string id = std::to_string(i), rel = "'r" + id + ".git'";
    int generation = pick(4);
    sql += "INSERT INTO repositories (repository_id, virtual_storage, relative_path, replica_path, \"primary\", "
           "generation) VALUES (" + id + ", 'default', " + rel + ", 'rp" + id + "', 'gitaly-1', " +
           (pick(20) == 0 ? std::string("NULL") : std::to_string(generation)) + ");\n";
    for (const std::string& s : storages) {
      int roll = pick(30);
      if (s == "gitaly-9" && roll < 24) continue;
      if (roll < 2) continue;  // no replica
      int g = roll < 4 ? generation - 1 : (roll == 4 ? generation + 1 : generation);
      if (i % 25 == 0) g = generation - 1;  // every replica behind the repository's generation
      sql += "INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, generation) "
             "VALUES (" + id + ", 'default', " + rel + ", '" + s + "', " + std::to_string(g) + ");\n";
    }
    if (pick(3) == 0) {
      for (const std::string& s : storages) {
        if (pick(2) == 0)
          sql += "INSERT INTO repository_assignments VALUES (" + id + ", 'default', " + rel + ", '" + s + "');\n";
      }
    }
    if (pick(15) == 0) {
      sql += "INSERT INTO replication_queue (lock_id, job) VALUES ('default|gitaly-2|r" + id +
             ".git', jsonb_build_object('change', 'delete_replica', 'virtual_storage', 'default', "
             "'relative_path', " + rel + ", 'repository_id', " + id + ", 'target_node_storage', 'gitaly-2'));\n";
    }
  }
  // One statement at a time: the extended protocol takes no lists.
  for (size_t at = 0, end; (end = sql.find(";\n", at)) != std::string::npos; at = end + 2) {
    std::string got = db.Scalar(sql.substr(at, end - at));
    expect_that(got.empty(), "inserted: " + sql.substr(at, end - at) + ": " + got);
  }
  for (const std::set<std::string>& down :
       std::vector<std::set<std::string>>{{}, {"gitaly-3"}, {"gitaly-1", "gitaly-2"}}) {
    Health(*store, down);
    std::string want_all, want_unavailable;
    for (int64_t i = 1; i <= 150; ++i) {
      auto one = store->GetRepositoryStatus(RepositoryKey{i, "", ""}, kConfigured, kWindow);
      assert_status_ok(one.status());
      assert_true(one->has_value());
      bool partially = false;
      for (const ReplicaStatus& r : (*one)->replicas) partially = partially || (r.assigned && !r.valid_primary);
      if (partially) want_all += Describe(**one) + "\n";
      if (partially && (*one)->Unavailable()) want_unavailable += Describe(**one) + "\n";
    }
    auto all = store->ListDataloss("default", true, kConfigured, kWindow);
    assert_status_ok(all.status());
    expect_that(DescribeAll(*all) == want_all,
                "with " + std::to_string(down.size()) + " down, the view lists\n" + want_all + "ForEachDataloss\n" +
                    DescribeAll(*all));
    auto unavailable = store->ListDataloss("default", false, kConfigured, kWindow);
    assert_status_ok(unavailable.status());
    expect_that(DescribeAll(*unavailable) == want_unavailable, "only unavailable: the view lists\n" +
                                                                   want_unavailable + "ForEachDataloss\n" +
                                                                   DescribeAll(*unavailable));
    fprintf(stderr, "%zu down: %zu listed, %zu unavailable of 150\n", down.size(), all->size(), unavailable->size());
  }
}

void MetadataAndMarkUnverified(void**) {
  TestDb db;
  auto store = db.Store();
  Health(*store, {});
  int64_t a = Repo(*store, "a.git");
  auto by_path = store->GetRepositoryStatus(RepositoryKey{std::nullopt, "default", "a.git"}, kConfigured, kWindow);
  assert_status_ok(by_path.status());
  assert_true(by_path->has_value());
  expect_that((*by_path)->repository_id == a, "found by path");
  expect_that(!(*by_path)->replica_path.empty(), "replica path");
  expect_that(!(*by_path)->replicas[0].verified_at_us.has_value(), "unverified");
  auto missing = store->GetRepositoryStatus(RepositoryKey{a + 100, "", ""}, kConfigured, kWindow);
  assert_status_ok(missing.status());
  expect_that(!missing->has_value(), "an unknown id is nullopt");

  expect_that(db.Scalar("UPDATE storage_repositories SET verified_at = '2021-04-01 10:04:20.5+00' RETURNING 'ok'") ==
                  "ok",
              "verified");
  auto verified = store->GetRepositoryStatus(RepositoryKey{a, "", ""}, kConfigured, kWindow);
  assert_status_ok(verified.status());
  expect_that((*verified)->replicas[0].verified_at_us == int64_t{1617271460500000},
              "verified_at in microseconds");
  auto one = store->MarkUnverified(UnverifiedSelector{std::nullopt, "default", "gitaly-2"});
  assert_status_ok(one.status());
  expect_that(*one == 1, "one replica of gitaly-2 marked, got " + std::to_string(*one));
  auto again = store->MarkUnverified(UnverifiedSelector{std::nullopt, "default", "gitaly-2"});
  expect_that(again.ok() && *again == 0, "already unverified: 0");
  auto by_id = store->MarkUnverified(UnverifiedSelector{a, "", ""});
  expect_that(by_id.ok() && *by_id == 2, "the other two by repository id");
  auto other_vs = store->MarkUnverified(UnverifiedSelector{std::nullopt, "other", ""});
  expect_that(other_vs.ok() && *other_vs == 0, "an unknown virtual storage marks none");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(DatalossListsOutdatedAndUnavailable),
      cmocka_unit_test(DatalossMatchesTheViewOfEveryRepository),
      cmocka_unit_test(MetadataAndMarkUnverified),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
