// Health by quorum, per-repository elections, the generation compare-and-set
// of RecordWrite and the replication factor, against a real PostgreSQL:
// what several praefects sharing one database must agree on.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <set>
#include <thread>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::Status;
using praefect::StatusCode;
using praefect::testing::TestDb;
using std::chrono::milliseconds;

namespace {

const std::vector<std::string> kNodes = {"gitaly-1", "gitaly-2", "gitaly-3"};
constexpr milliseconds kWindow{10000};

std::vector<std::string> Healthy(PostgresDatastore& store, milliseconds window = kWindow) {
  auto h = store.GetHealthyStorages(window);
  assert_status_ok(h.status());
  auto it = h->find("default");
  return it == h->end() ? std::vector<std::string>() : it->second;
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

// `praefect` saw each of kNodes healthy unless listed in `down`.
void Check(PostgresDatastore& store, const std::string& praefect, const std::set<std::string>& down) {
  std::vector<NodeHealth> checks;
  for (const auto& n : kNodes) checks.push_back(NodeHealth{"default", n, down.count(n) == 0});
  assert_status_ok(store.RecordHealth(praefect, checks));
}

// A repository on every node at generation 0, primary gitaly-1.
int64_t Replicated(PostgresDatastore& store, const std::string& rel, std::vector<std::string> assigned = {}) {
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  NewRepository r{*id, "default", rel, DeriveReplicaPath(*id), "gitaly-1", {}, "", std::move(assigned)};
  assert_status_ok(store.CreateRepository(r));
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 0));
  assert_status_ok(store.SetGeneration(*id, "gitaly-3", 0));
  return *id;
}

void QuorumOfPraefects(void**) {
  TestDb db;
  auto store = db.Store();
  expect_that(Healthy(*store).empty(), "no storage healthy before any check");
  Check(*store, "p1", {"gitaly-3"});
  Check(*store, "p2", {"gitaly-2", "gitaly-3"});
  Check(*store, "p3", {"gitaly-1", "gitaly-2"});
  // gitaly-1: 2 of 3 votes; gitaly-2: 1 of 3; gitaly-3: 1 of 3.
  expect_that(Join(Healthy(*store)) == "gitaly-1", "gitaly-1 alone healthy, got " + Join(Healthy(*store)));
  // p2 now sees gitaly-3 healthy: with p3, 2 of 3.
  Check(*store, "p2", {"gitaly-2"});
  expect_that(Join(Healthy(*store)) == "gitaly-1,gitaly-3", "2 of 3 for gitaly-3, got " + Join(Healthy(*store)));
  // A failed latest check withdraws the vote, although it saw it healthy before.
  Check(*store, "p2", {"gitaly-2", "gitaly-3"});
  expect_that(Join(Healthy(*store)) == "gitaly-1", "p2's vote for gitaly-3 gone, got " + Join(Healthy(*store)));
  // The operator's view (10 s) agrees.
  expect_that(db.Scalar("SELECT string_agg(storage, ',' ORDER BY storage) FROM healthy_storages") == "gitaly-1",
              "healthy_storages to agree, got " + db.Scalar("SELECT string_agg(storage, ',') FROM healthy_storages"));
  // p3 falls silent for longer than the window: 2 praefects left, 1 vote
  // suffices (gitaly-2 by p1; gitaly-3 by nobody now).
  expect_that(db.Scalar("UPDATE node_status SET last_contact_attempt_at = now() - interval '1 minute', "
                        "last_seen_active_at = now() - interval '1 minute' WHERE praefect_name = 'p3' "
                        "RETURNING 'ok'") == "ok",
              "p3's rows aged");
  expect_that(Join(Healthy(*store)) == "gitaly-1,gitaly-2", "p3 no longer counted, got " + Join(Healthy(*store)));
  // The window is the caller's: with 1 s, checks older than that do not count.
  std::this_thread::sleep_for(milliseconds(1100));
  expect_that(Healthy(*store, milliseconds(1000)).empty(), "nothing healthy in a 1 s window after 1.1 s of silence");
  Check(*store, "p1", {});
  expect_that(Join(Healthy(*store, milliseconds(1000))) == "gitaly-1,gitaly-2,gitaly-3",
              "p1 alone active in the 1 s window: its votes suffice");
  // A second virtual storage is counted on its own.
  assert_status_ok(store->RecordHealth("p9", {NodeHealth{"other", "gitaly-9", true}}));
  auto all = store->GetHealthyStorages(milliseconds(1000));
  expect_that(all->size() == 2 && Join(all->at("other")) == "gitaly-9", "the other virtual storage apart");
}

void ElectionKeepsThenFailsOver(void**) {
  TestDb db;
  auto store = db.Store();
  Check(*store, "p1", {});
  int64_t id = Replicated(*store, "e.git");
  auto e = store->GetPrimary(id, kWindow);
  assert_status_ok(e.status());
  expect_that(e->primary == "gitaly-1" && !e->changed && e->previous == "gitaly-1", "the valid primary kept");
  expect_that(db.Scalar("SELECT count(*) FROM valid_primaries WHERE repository_id = " + std::to_string(id)) == "3",
              "valid_primaries lists the three replicas");

  Check(*store, "p1", {"gitaly-1"});
  e = store->GetPrimary(id, kWindow);
  assert_status_ok(e.status());
  const std::string second = e->primary;
  expect_that((second == "gitaly-2" || second == "gitaly-3") && e->changed && e->previous == "gitaly-1",
              "a healthy replica elected, got \"" + second + "\"");
  expect_that((*store->GetRepository("default", "e.git"))->primary == second, "the election recorded");
  e = store->GetPrimary(id, kWindow);
  expect_that(e->primary == second && !e->changed, "the new primary kept while valid");

  // A write on the new primary leaves the third replica outdated; with the
  // new primary down, neither the outdated one nor the unhealthy gitaly-1
  // (outdated too) qualifies.
  const std::string third = second == "gitaly-2" ? "gitaly-3" : "gitaly-2";
  assert_status_ok(store->RecordWrite(Write{id, second, {}, {third, "gitaly-1"}, ""}));
  Check(*store, "p1", {second});
  e = store->GetPrimary(id, kWindow);
  assert_status_ok(e.status());
  expect_that(e->primary.empty() && e->changed && e->previous == second, "no primary, got \"" + e->primary + "\"");
  expect_that(e->reason.find("not see healthy") != std::string::npos && e->reason.find(second) != std::string::npos,
              "the reason to name the unhealthy up-to-date replica, got: " + e->reason);
  expect_that(db.Scalar("SELECT \"primary\" IS NULL FROM repositories WHERE repository_id = " + std::to_string(id)) ==
                  "t",
              "\"primary\" NULL in the table");
  // Once it is back, the up-to-date replica is elected again.
  Check(*store, "p1", {});
  e = store->GetPrimary(id, kWindow);
  expect_that(e->primary == second && e->changed && e->previous.empty(), "the up-to-date replica elected again");
  assert_int_equal(static_cast<int>(store->GetPrimary(id + 1000, kWindow).status().code()),
                   static_cast<int>(StatusCode::kNotFound));
}

void AssignedReplicasArePreferred(void**) {
  TestDb db;
  auto store = db.Store();
  Check(*store, "p1", {"gitaly-1"});
  // Ten repositories: an election ignoring assignments would pick gitaly-2
  // for about half of them.
  for (int i = 0; i < 10; ++i) {
    int64_t id = Replicated(*store, "a" + std::to_string(i) + ".git", {"gitaly-3", "gitaly-1"});
    auto e = store->GetPrimary(id, kWindow);
    assert_status_ok(e.status());
    expect_that(e->primary == "gitaly-3", "the assigned replica elected, got \"" + e->primary + "\"");
  }
  auto meta = store->GetRepository("default", "a0.git");
  expect_that(Join((*meta)->assigned) == "gitaly-1,gitaly-3", "assignments read back sorted");
  // A replica being deleted is no candidate.
  int64_t id = Replicated(*store, "d.git");
  db.Scalar("INSERT INTO replication_queue (lock_id, job) VALUES ('x', jsonb_build_object('change', "
            "'delete_replica', 'repository_id', " + std::to_string(id) + ", 'target_node_storage', 'gitaly-2'))");
  for (int i = 0; i < 5; ++i) {
    db.Scalar("UPDATE repositories SET \"primary\" = 'gitaly-1' WHERE repository_id = " + std::to_string(id));
    auto e = store->GetPrimary(id, kWindow);
    expect_that(e->primary == "gitaly-3", "never the replica being deleted, got \"" + e->primary + "\"");
  }
}

// Praefects racing to elect agree: one statement under the row lock.
void RacingElectionsAgree(void**) {
  TestDb db;
  constexpr int kThreads = 8;
  std::vector<std::unique_ptr<PostgresDatastore>> stores;
  for (int i = 0; i < kThreads; ++i) stores.push_back(db.Store());
  Check(*stores[0], "p1", {"gitaly-1"});
  for (int round = 0; round < 20; ++round) {
    int64_t id = Replicated(*stores[0], "race" + std::to_string(round) + ".git");
    std::vector<std::string> got(kThreads);
    std::vector<Status> errors(kThreads);
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        auto e = stores[t]->GetPrimary(id, kWindow);
        if (e.ok()) got[t] = e->primary;
        else errors[t] = e.status();
      });
    }
    for (auto& th : threads) th.join();
    for (const auto& st : errors) assert_status_ok(st);
    std::set<std::string> distinct(got.begin(), got.end());
    expect_that(distinct.size() == 1 && *distinct.begin() != "gitaly-1" && !distinct.begin()->empty(),
                "round " + std::to_string(round) + ": every praefect to see one new primary, got " + Join(got));
    expect_that((*stores[0]->GetRepository("default", "race" + std::to_string(round) + ".git"))->primary == got[0],
                "the table to hold it");
  }
}

void WriteOnOutdatedPrimaryIsRefused(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t id = Replicated(*store, "w.git");
  assert_status_ok(store->RecordWrite(Write{id, "gitaly-1", {"gitaly-3"}, {"gitaly-2"}, ""}));
  const int64_t jobs = *store->CountJobs(JobState::kReady);
  Status st = store->RecordWrite(Write{id, "gitaly-2", {"gitaly-3"}, {"gitaly-1"}, ""});
  expect_that(st.code() == StatusCode::kFailedPrecondition &&
                  st.message() == "storage \"gitaly-2\" is not at the latest generation of repository " +
                                      std::to_string(id) + ": it missed an earlier write",
              "FAILED_PRECONDITION naming the storage, got " + st.ToString());
  auto meta = store->GetRepository("default", "w.git");
  expect_that((*meta)->generation == 1 && Join((*meta)->UpToDate()) == "gitaly-1,gitaly-3",
              "no generation changed");
  expect_that(db.Scalar("SELECT string_agg(storage || '=' || generation, ',' ORDER BY storage) FROM "
                        "storage_repositories") == "gitaly-1=1,gitaly-2=0,gitaly-3=1",
              "replica generations unchanged");
  assert_int_equal(*store->CountJobs(JobState::kReady), jobs);
  // An outdated replica that took a write does not move up with it.
  assert_status_ok(store->RecordWrite(Write{id, "gitaly-1", {"gitaly-2"}, {}, ""}));
  expect_that(db.Scalar("SELECT string_agg(storage || '=' || generation, ',' ORDER BY storage) FROM "
                        "storage_repositories") == "gitaly-1=2,gitaly-2=0,gitaly-3=1",
              "only replicas at the latest generation bumped");
  assert_int_equal(static_cast<int>(store->RecordWrite(Write{id + 99, "gitaly-1", {}, {}, ""}).code()),
                   static_cast<int>(StatusCode::kNotFound));
}

// Concurrent writes through several praefects serialize on the repository:
// none is refused as outdated because it waited for another.
void ConcurrentWritesAllRecorded(void**) {
  TestDb db;
  constexpr int kThreads = 8, kWrites = 10;
  std::vector<std::unique_ptr<PostgresDatastore>> stores;
  for (int i = 0; i < kThreads; ++i) stores.push_back(db.Store());
  int64_t id = Replicated(*stores[0], "cw.git");
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        if (!stores[t]->RecordWrite(Write{id, "gitaly-1", {"gitaly-2", "gitaly-3"}, {}, ""}).ok()) ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  assert_int_equal(refused.load(), 0);
  auto meta = stores[0]->GetRepository("default", "cw.git");
  assert_int_equal((*meta)->generation, kThreads * kWrites);
  expect_that((*meta)->UpToDate().size() == 3, "every replica at the latest generation");
}

void ReplicationFactor(void**) {
  TestDb db;
  auto store = db.Store();
  int64_t id = Replicated(*store, "f.git");
  auto code = [&](int factor, const std::string& rel) {
    return store->SetReplicationFactor("default", rel, factor, kNodes).status();
  };
  expect_that(code(0, "f.git").code() == StatusCode::kInvalidArgument, "0 refused");
  expect_that(code(4, "f.git").code() == StatusCode::kInvalidArgument, "4 of 3 refused");
  Status missing = code(2, "nope.git");
  expect_that(missing.code() == StatusCode::kNotFound && missing.message().find("\"nope.git\"") != std::string::npos &&
                  missing.message().find("\"default\"") != std::string::npos,
              "NOT_FOUND naming the repository and virtual storage, got " + missing.ToString());

  auto two = store->SetReplicationFactor("default", "f.git", 2, kNodes);
  assert_status_ok(two.status());
  expect_that(two->size() == 2 && std::is_sorted(two->begin(), two->end()) &&
                  std::count(two->begin(), two->end(), "gitaly-1") == 1,
              "two sorted assignments keeping the primary, got " + Join(*two));
  const std::string removed = std::count(two->begin(), two->end(), "gitaly-2") ? "gitaly-3" : "gitaly-2";
  auto meta = store->GetRepository("default", "f.git");
  expect_that((*meta)->assigned == *two && (*meta)->replicas.size() == 2, "the unassigned replica's record gone");
  auto jobs = store->Dequeue("default", removed, 10);
  expect_that(jobs->size() == 1 && jobs->front().job.change == ChangeType::kDeleteReplica &&
                  jobs->front().job.repository_id == id,
              "a delete_replica job for " + removed);
  assert_status_ok(store->Acknowledge(JobState::kCompleted, {jobs->front().id}).status());

  auto three = store->SetReplicationFactor("default", "f.git", 3, kNodes);
  assert_status_ok(three.status());
  expect_that(*three == kNodes, "all three assigned, got " + Join(*three));
  jobs = store->Dequeue("default", removed, 10);
  expect_that(jobs->size() == 1 && jobs->front().job.change == ChangeType::kUpdate &&
                  jobs->front().job.source_node_storage == "gitaly-1",
              "one update job from the primary for " + removed);
  assert_int_equal(*store->CountJobs(JobState::kReady), 0);
  expect_that((*store->GetRepository("default", "f.git"))->assigned == kNodes, "assignments recorded");
  // Deleting returns the assignments it removed.
  auto gone = store->DeleteRepository("default", "f.git", "", "");
  expect_that(gone->has_value() && (*gone)->assigned == kNodes, "DeleteRepository's metadata has the assignments");
}

// Praefects changing one repository's assignments at once do not lose each
// other's change: from three storages, every call for two must return the
// same two (the first call's), and exactly one replica is dropped.
void ConcurrentReplicationFactorsSerialize(void**) {
  TestDb db;
  constexpr int kThreads = 8;
  std::vector<std::unique_ptr<PostgresDatastore>> stores;
  for (int i = 0; i < kThreads; ++i) stores.push_back(db.Store());
  for (int round = 0; round < 10; ++round) {
    const std::string rel = "rf" + std::to_string(round) + ".git";
    int64_t id = Replicated(*stores[0], rel);
    std::vector<std::string> got(kThreads);
    std::vector<Status> errors(kThreads);
    std::barrier start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        auto a = stores[t]->SetReplicationFactor("default", rel, 2, kNodes);
        if (a.ok()) got[t] = Join(*a);
        else errors[t] = a.status();
      });
    }
    for (auto& th : threads) th.join();
    for (const auto& st : errors) assert_status_ok(st);
    std::set<std::string> distinct(got.begin(), got.end());
    expect_that(distinct.size() == 1, "round " + std::to_string(round) + ": one outcome, got " + Join(got));
    const std::string where = " WHERE repository_id = " + std::to_string(id);
    expect_that(db.Scalar("SELECT string_agg(storage, ',' ORDER BY storage) FROM repository_assignments" + where) ==
                    got[0],
                "the table to hold it");
    expect_that(db.Scalar("SELECT count(*) FROM storage_repositories" + where) == "2", "one replica dropped");
    expect_that(db.Scalar("SELECT count(*) FROM replication_queue WHERE job->>'change' = 'delete_replica' AND "
                          "(job->>'repository_id')::bigint = " + std::to_string(id)) == "1",
                "one delete_replica job");
  }
}

void TextArraysRoundTrip(void**) {
  TestDb db;
  std::vector<std::string> odd = {"a", "b c", "quo\"te", "back\\slash", "", "NULL", "com,ma", "{br}"};
  auto rows = db.sql->Exec("SELECT $1::text[]", {TextArray(odd)}, praefect::testing::In(milliseconds(5000)));
  assert_status_ok(rows.status());
  expect_that(ParseTextArray(rows->Text(0, 0)) == odd, "ParseTextArray to undo PostgreSQL's output, got " +
                                                           rows->Text(0, 0));
  expect_that(ParseTextArray("").empty(), "NULL is empty");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(QuorumOfPraefects),           cmocka_unit_test(ElectionKeepsThenFailsOver),
      cmocka_unit_test(AssignedReplicasArePreferred), cmocka_unit_test(RacingElectionsAgree),
      cmocka_unit_test(WriteOnOutdatedPrimaryIsRefused), cmocka_unit_test(ConcurrentWritesAllRecorded),
      cmocka_unit_test(ReplicationFactor),           cmocka_unit_test(ConcurrentReplicationFactorsSerialize),
      cmocka_unit_test(TextArraysRoundTrip),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
