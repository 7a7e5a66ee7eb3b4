// PostgresDatastore as the OperatorStore, against a real PostgreSQL: the
// dataloss selection and per-replica view (assigned, healthy, valid
// primary), accept-dataloss and MarkUnverified.
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
      cmocka_unit_test(MetadataAndMarkUnverified),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
