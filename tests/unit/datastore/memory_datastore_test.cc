// The in-memory Datastore: generations, jobs, collapsing, locks, deletion,
// health by quorum, elections, the replication factor.
#include "datastore/memory_datastore.h"

#include <algorithm>
#include <set>

#include "test_support.h"

namespace {

using namespace praefect::datastore;  // NOLINT: test file
using praefect::StatusCode;

void ReplicaPathsArePraefects(void**) {
  // Praefect documents @cluster/repositories/6b/86/1 for repository id 1
  // (sha256("1") = 6b86b273...).
  assert_string_equal(DeriveReplicaPath(1).c_str(), "@cluster/repositories/6b/86/1");
  assert_string_equal(DeriveReplicaPath(2).c_str(), "@cluster/repositories/d4/73/2");
}

NewRepository Repo(int64_t id, const std::string& rel) {
  NewRepository r;
  r.repository_id = id;
  r.virtual_storage = "default";
  r.relative_path = rel;
  r.replica_path = DeriveReplicaPath(id);
  r.primary = "gitaly-1";
  r.outdated = {"gitaly-2", "gitaly-3"};
  return r;
}

void CreateWriteReplicate(void**) {
  MemoryDatastore store;
  std::vector<std::string> notified;
  store.SetEnqueueListener([&](const std::string& vs, const std::string& target) { notified.push_back(vs + "/" + target); });
  auto id = store.ReserveRepositoryId();
  assert_status_ok(id.status());
  assert_status_ok(store.CreateRepository(Repo(*id, "a.git")));
  assert_int_equal(static_cast<int>(store.CreateRepository(Repo(*id + 100, "a.git")).code()),
                   static_cast<int>(StatusCode::kAlreadyExists));
  expect_that((notified == std::vector<std::string>{"default/gitaly-2", "default/gitaly-3"}), "listener per target");

  auto meta = store.GetRepository("default", "a.git");
  assert_status_ok(meta.status());
  assert_true(meta->has_value());
  assert_int_equal((*meta)->generation, 0);
  expect_that((*meta)->UpToDate() == std::vector<std::string>{"gitaly-1"}, "only the primary holds it");

  // Two writes before replication: the jobs collapse into one per target.
  for (int i = 0; i < 2; ++i) {
    Write w{*id, "gitaly-1", {}, {"gitaly-2", "gitaly-3"}, "corr"};
    assert_status_ok(store.RecordWrite(w));
  }
  meta = store.GetRepository("default", "a.git");
  assert_int_equal((*meta)->generation, 2);
  assert_int_equal(*store.CountJobs(JobState::kReady), 2);

  // One job per replica at a time.
  auto jobs = store.Dequeue("default", "gitaly-2", 10);
  assert_status_ok(jobs.status());
  assert_int_equal(jobs->size(), 1);
  assert_string_equal(jobs->front().job.source_node_storage.c_str(), "gitaly-1");
  assert_string_equal(jobs->front().job.replica_path.c_str(), DeriveReplicaPath(*id).c_str());
  // A write while it runs enqueues a new ready job that waits for the lock.
  assert_status_ok(store.RecordWrite(Write{*id, "gitaly-1", {}, {"gitaly-2"}, ""}));
  assert_int_equal(store.Dequeue("default", "gitaly-2", 10)->size(), 0);
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 2));
  assert_int_equal(store.Acknowledge(JobState::kCompleted, {jobs->front().id})->size(), 1);
  jobs = store.Dequeue("default", "gitaly-2", 10);
  assert_int_equal(jobs->size(), 1);
  assert_status_ok(store.SetGeneration(*id, "gitaly-2", 3));
  assert_status_ok(store.Acknowledge(JobState::kCompleted, {jobs->front().id}).status());
  meta = store.GetRepository("default", "a.git");
  auto up = (*meta)->UpToDate();
  expect_that((up == std::vector<std::string>{"gitaly-1", "gitaly-2"}), "gitaly-2 caught up");
}

void FailedJobsRetryThenDie(void**) {
  MemoryDatastore store;
  assert_status_ok(store.CreateRepository(Repo(1, "b.git")));
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto jobs = store.Dequeue("default", "gitaly-3", 10);
    assert_int_equal(jobs->size(), 1);
    assert_status_ok(store.Acknowledge(JobState::kFailed, {jobs->front().id}).status());
  }
  assert_int_equal(store.Dequeue("default", "gitaly-3", 10)->size(), 0);
  assert_int_equal(*store.CountJobs(JobState::kDead), 0);  // a job that dies is deleted at once
  assert_true(store.Jobs().size() == 1);                    // gitaly-2's job only
  assert_int_equal(static_cast<int>(store.Acknowledge(JobState::kReady, {1}).status().code()),
                   static_cast<int>(StatusCode::kInvalidArgument));
}

void DeleteSchedulesReplicaDeletion(void**) {
  MemoryDatastore store;
  assert_status_ok(store.CreateRepository(Repo(7, "c.git")));
  assert_status_ok(store.SetGeneration(7, "gitaly-2", 0));
  auto removed = store.DeleteRepository("default", "c.git", "gitaly-1", "corr");
  assert_status_ok(removed.status());
  assert_true(removed->has_value());
  assert_false(store.GetRepository("default", "c.git")->has_value());
  // The pending update of gitaly-3 is dropped; gitaly-2 gets a deletion.
  auto jobs = store.Jobs();
  assert_int_equal(jobs.size(), 1);
  expect_that(jobs[0].job.change == ChangeType::kDeleteReplica && jobs[0].job.target_node_storage == "gitaly-2",
              "a delete_replica job for gitaly-2");
  assert_false(store.DeleteRepository("default", "c.git", "", "")->has_value());
  assert_int_equal(static_cast<int>(store.RecordWrite(Write{7, "gitaly-1", {}, {}, ""}).code()),
                   static_cast<int>(StatusCode::kNotFound));
}

// delete_replica jobs spend no attempt: retried until the replica is gone.
void DeleteReplicaJobsNeverDie(void**) {
  MemoryDatastore store;
  assert_status_ok(store.CreateRepository(Repo(7, "d.git")));
  assert_status_ok(store.SetGeneration(7, "gitaly-2", 0));
  assert_status_ok(store.DeleteRepository("default", "d.git", "gitaly-1", "corr").status());
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto jobs = store.Dequeue("default", "gitaly-2", 10);
    assert_int_equal(jobs->size(), 1);
    assert_int_equal(jobs->front().attempts_left, 3);
    assert_int_equal(store.Acknowledge(JobState::kFailed, {jobs->front().id})->size(), 1);
  }
  assert_int_equal(*store.CountJobs(JobState::kReady), 1);
}

// A replica counted among those that took a write while it was a
// generation behind is not bumped, and gets a job instead.
void OutdatedVoterGetsAJob(void**) {
  MemoryDatastore store;
  assert_status_ok(store.CreateRepository(Repo(1, "v.git")));
  assert_status_ok(store.SetGeneration(1, "gitaly-2", 0));
  for (const char* target : {"gitaly-2", "gitaly-3"}) {
    auto jobs = store.Dequeue("default", target, 10);
    assert_status_ok(store.Acknowledge(JobState::kCompleted, {jobs->front().id}).status());
  }
  assert_status_ok(store.RecordWrite(Write{1, "gitaly-1", {"gitaly-2"}, {}, ""}));
  assert_int_equal(store.Jobs().size(), 0);
  assert_status_ok(store.RecordWrite(Write{1, "gitaly-1", {"gitaly-2", "gitaly-3"}, {}, ""}));
  auto jobs = store.Jobs();
  expect_that(jobs.size() == 1 && jobs[0].job.target_node_storage == "gitaly-3", "a job for gitaly-3");
}

using std::chrono::milliseconds;
using std::chrono::seconds;
const std::vector<std::string> kNodes = {"gitaly-1", "gitaly-2", "gitaly-3"};
constexpr milliseconds kWindow{10000};

// A store whose node_status clock the test moves.
struct Clocked {
  Clocked() { store.SetClock([this] { return now; }); }
  std::vector<std::string> Healthy(milliseconds window = kWindow) {
    auto h = store.GetHealthyStorages(window);
    assert_status_ok(h.status());
    auto it = h->find("default");
    return it == h->end() ? std::vector<std::string>() : it->second;
  }
  // `praefect` saw each of kNodes healthy unless listed in `down`. Each
  // check is a millisecond after the previous one: at one instant a failed
  // check would not be later than a successful one, and would not count as
  // the latest.
  void Check(const std::string& praefect, const std::set<std::string>& down) {
    now += milliseconds(1);
    std::vector<NodeHealth> checks;
    for (const auto& n : kNodes) checks.push_back(NodeHealth{"default", n, down.count(n) == 0});
    assert_status_ok(store.RecordHealth(praefect, checks));
  }
  // A repository on every node at generation 0, primary gitaly-1.
  int64_t Replicated(const std::string& rel, std::vector<std::string> assigned = {}) {
    int64_t id = *store.ReserveRepositoryId();
    assert_status_ok(store.CreateRepository(
        NewRepository{id, "default", rel, DeriveReplicaPath(id), "gitaly-1", {}, "", std::move(assigned)}));
    assert_status_ok(store.SetGeneration(id, "gitaly-2", 0));
    assert_status_ok(store.SetGeneration(id, "gitaly-3", 0));
    return id;
  }
  MemoryDatastore store;
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
};

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

void QuorumOfPraefects(void**) {
  Clocked c;
  c.Check("p1", {"gitaly-3"});
  c.Check("p2", {"gitaly-2", "gitaly-3"});
  c.Check("p3", {"gitaly-1", "gitaly-2"});
  expect_that(Join(c.Healthy()) == "gitaly-1", "2 of 3 healthy, 1 of 3 not, got " + Join(c.Healthy()));
  c.Check("p2", {"gitaly-2"});
  expect_that(Join(c.Healthy()) == "gitaly-1,gitaly-3", "p2 and p3 for gitaly-3, got " + Join(c.Healthy()));
  c.Check("p2", {"gitaly-2", "gitaly-3"});
  expect_that(Join(c.Healthy()) == "gitaly-1", "a failed latest check withdraws p2's vote");
  // p3 silent past the window: 2 praefects, 1 vote suffices.
  c.now += seconds(5);
  c.Check("p1", {"gitaly-3"});
  c.Check("p2", {"gitaly-2", "gitaly-3"});
  c.now += seconds(6);
  expect_that(Join(c.Healthy()) == "gitaly-1,gitaly-2", "p3 no longer counted, got " + Join(c.Healthy()));
  c.now += seconds(5);
  expect_that(c.Healthy().empty(), "nothing healthy when every check is older than the window");
}

void ElectionKeepsThenFailsOver(void**) {
  Clocked c;
  c.Check("p1", {});
  int64_t id = c.Replicated("e.git");
  auto e = c.store.GetPrimary(id, kWindow);
  expect_that(e->primary == "gitaly-1" && !e->changed, "the valid primary kept");
  c.Check("p1", {"gitaly-1"});
  e = c.store.GetPrimary(id, kWindow);
  const std::string second = e->primary;
  expect_that((second == "gitaly-2" || second == "gitaly-3") && e->changed && e->previous == "gitaly-1",
              "a healthy replica elected, got \"" + second + "\"");
  const std::string third = second == "gitaly-2" ? "gitaly-3" : "gitaly-2";
  assert_status_ok(c.store.RecordWrite(Write{id, second, {}, {third, "gitaly-1"}, ""}));
  c.Check("p1", {second});
  e = c.store.GetPrimary(id, kWindow);
  expect_that(e->primary.empty() && e->changed && e->reason.find(second) != std::string::npos,
              "never an outdated replica: none, with a reason, got \"" + e->primary + "\" " + e->reason);
  expect_that((*c.store.GetRepository("default", "e.git"))->primary.empty(), "the primary cleared");
  c.Check("p1", {});
  e = c.store.GetPrimary(id, kWindow);
  expect_that(e->primary == second && e->changed, "the up-to-date replica elected again");
  assert_int_equal(static_cast<int>(c.store.GetPrimary(id + 1000, kWindow).status().code()),
                   static_cast<int>(StatusCode::kNotFound));
}

void AssignedReplicasArePreferred(void**) {
  Clocked c;
  c.Check("p1", {"gitaly-1"});
  for (int i = 0; i < 10; ++i) {
    int64_t id = c.Replicated("a" + std::to_string(i) + ".git", {"gitaly-3", "gitaly-1"});
    expect_that(c.store.GetPrimary(id, kWindow)->primary == "gitaly-3", "the assigned replica elected");
  }
  expect_that(Join((*c.store.GetRepository("default", "a0.git"))->assigned) == "gitaly-1,gitaly-3",
              "assignments sorted");
}

void WriteOnOutdatedPrimaryIsRefused(void**) {
  Clocked c;
  int64_t id = c.Replicated("w.git");
  assert_status_ok(c.store.RecordWrite(Write{id, "gitaly-1", {"gitaly-3"}, {"gitaly-2"}, ""}));
  const size_t jobs = c.store.Jobs().size();
  auto st = c.store.RecordWrite(Write{id, "gitaly-2", {"gitaly-3"}, {"gitaly-1"}, ""});
  expect_that(st.code() == StatusCode::kFailedPrecondition && st.message().find("\"gitaly-2\"") != std::string::npos,
              "FAILED_PRECONDITION naming the storage, got " + st.ToString());
  auto meta = c.store.GetRepository("default", "w.git");
  expect_that((*meta)->generation == 1 && Join((*meta)->UpToDate()) == "gitaly-1,gitaly-3", "nothing changed");
  assert_int_equal(c.store.Jobs().size(), jobs);
}

void ReplicationFactor(void**) {
  Clocked c;
  int64_t id = c.Replicated("f.git");
  expect_that(c.store.SetReplicationFactor("default", "f.git", 0, kNodes).status().code() ==
                  StatusCode::kInvalidArgument, "0 refused");
  expect_that(c.store.SetReplicationFactor("default", "f.git", 4, kNodes).status().code() ==
                  StatusCode::kInvalidArgument, "4 of 3 refused");
  expect_that(c.store.SetReplicationFactor("default", "nope.git", 2, kNodes).status().code() ==
                  StatusCode::kNotFound, "unknown repository");
  auto two = c.store.SetReplicationFactor("default", "f.git", 2, kNodes);
  assert_status_ok(two.status());
  expect_that(two->size() == 2 && std::is_sorted(two->begin(), two->end()) && (*two)[0] == "gitaly-1",
              "the primary kept, got " + Join(*two));
  const std::string removed = (*two)[1] == "gitaly-2" ? "gitaly-3" : "gitaly-2";
  expect_that((*c.store.GetRepository("default", "f.git"))->replicas.size() == 2, "its replica record gone");
  auto jobs = c.store.Jobs();
  expect_that(jobs.size() == 1 && jobs[0].job.change == ChangeType::kDeleteReplica &&
                  jobs[0].job.target_node_storage == removed && jobs[0].job.repository_id == id,
              "a delete_replica job for " + removed);
  auto taken = c.store.Dequeue("default", removed, 1);
  assert_int_equal(taken->size(), 1);
  assert_status_ok(c.store.Acknowledge(JobState::kCompleted, {taken->front().id}).status());
  auto three = c.store.SetReplicationFactor("default", "f.git", 3, kNodes);
  expect_that(*three == kNodes, "all three assigned");
  jobs = c.store.Jobs();
  expect_that(jobs.size() == 1 && jobs[0].job.change == ChangeType::kUpdate &&
                  jobs[0].job.target_node_storage == removed,
              "one update job for " + removed);
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ReplicaPathsArePraefects),
      cmocka_unit_test(CreateWriteReplicate),
      cmocka_unit_test(FailedJobsRetryThenDie),
      cmocka_unit_test(DeleteSchedulesReplicaDeletion),
      cmocka_unit_test(DeleteReplicaJobsNeverDie),
      cmocka_unit_test(OutdatedVoterGetsAJob),
      cmocka_unit_test(QuorumOfPraefects),
      cmocka_unit_test(ElectionKeepsThenFailsOver),
      cmocka_unit_test(AssignedReplicasArePreferred),
      cmocka_unit_test(WriteOnOutdatedPrimaryIsRefused),
      cmocka_unit_test(ReplicationFactor),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
