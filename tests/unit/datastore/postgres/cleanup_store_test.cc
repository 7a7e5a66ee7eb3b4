// PostgresDatastore as the StorageCleanupStore, against a real PostgreSQL:
// the storages' turns for repository cleanup (storage_cleanups) as Praefect
// takes them: never-cleaned storages first, one praefect per storage while
// its claim is live, a dead claim taken over, a cleaned storage due again
// only after run_interval.
#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::testing::TestDb;
using std::chrono::milliseconds;

namespace {

const StoragePairs kStorages = {{"default", "gitaly-1"}, {"default", "gitaly-2"}, {"other", "gitaly-1"}};
constexpr milliseconds kDay{24 * 3600 * 1000};
constexpr milliseconds kLiveness{30000};

std::string Claim(PostgresDatastore& store, const StoragePairs& storages = kStorages) {
  auto claim = store.ClaimStorageCleanup(storages, kDay, kLiveness);
  assert_status_ok(claim.status());
  return claim->has_value() ? (*claim)->virtual_storage + "/" + (*claim)->storage : "none";
}

void PopulateIsIdempotent(void**) {
  TestDb db;
  auto store = db.Store();
  assert_status_ok(store->PopulateStorageCleanups(kStorages));
  assert_status_ok(store->PopulateStorageCleanups(kStorages));
  expect_that(db.Scalar("SELECT count(*) FROM storage_cleanups WHERE last_run IS NULL AND triggered_at IS NULL") ==
                  "3",
              "one fresh row per storage");
}

void EachStorageOnceUntilRunIntervalPasses(void**) {
  TestDb db;
  auto store = db.Store();
  auto other = db.Store();  // another praefect
  assert_status_ok(store->PopulateStorageCleanups(kStorages));
  const std::string first = Claim(*store);
  expect_that(first == "default/gitaly-1", "never-cleaned storages in name order first, got " + first);
  const std::string second = Claim(*other);
  expect_that(second == "default/gitaly-2", "a live claim is not taken twice, got " + second);
  assert_status_ok(store->FinishStorageCleanup(CleanupClaim{"default", "gitaly-1"}));
  const std::string third = Claim(*store);
  expect_that(third == "other/gitaly-1", "the last never-cleaned one, got " + third);
  assert_status_ok(store->FinishStorageCleanup(CleanupClaim{"other", "gitaly-1"}));
  const std::string fourth = Claim(*store);
  expect_that(fourth == "none", "nothing due: two cleaned within run_interval, one claimed, got " + fourth);
  // A day later the storage cleaned longest ago comes first.
  db.Scalar("UPDATE storage_cleanups SET last_run = last_run - interval '25 hours'");
  db.Scalar("UPDATE storage_cleanups SET last_run = last_run - interval '1 hour' WHERE virtual_storage = 'other'");
  const std::string fifth = Claim(*store);
  expect_that(fifth == "other/gitaly-1", "the one cleaned longest ago, got " + fifth);
}

void ADeadClaimIsTakenOver(void**) {
  TestDb db;
  auto store = db.Store();
  const StoragePairs one = {{"default", "gitaly-1"}};
  assert_status_ok(store->PopulateStorageCleanups(one));
  expect_that(Claim(*store, one) == "default/gitaly-1", "the storage claimed");
  assert_status_ok(store->RefreshStorageCleanup(CleanupClaim{"default", "gitaly-1"}));
  expect_that(Claim(*store, one) == "none", "a refreshed claim is live");
  db.Scalar("UPDATE storage_cleanups SET triggered_at = triggered_at - interval '31 seconds'");
  expect_that(Claim(*store, one) == "default/gitaly-1", "a claim not refreshed for 30 s is taken over");
}

void OnlyTheGivenStorages(void**) {
  TestDb db;
  auto store = db.Store();
  assert_status_ok(store->PopulateStorageCleanups(kStorages));
  // Another praefect's configuration (a storage this one does not route to).
  const StoragePairs mine = {{"default", "gitaly-2"}};
  expect_that(Claim(*store, mine) == "default/gitaly-2", "its own storage");
  expect_that(Claim(*store, mine) == "none", "never another's");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(PopulateIsIdempotent),
      cmocka_unit_test(EachStorageOnceUntilRunIntervalPasses),
      cmocka_unit_test(ADeadClaimIsTakenOver),
      cmocka_unit_test(OnlyTheGivenStorages),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
