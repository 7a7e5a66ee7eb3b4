// The replication workers against the memory store, with nodes that cannot
// be reached (unix sockets that do not exist): a job that would call a node
// fails at once, so a job that succeeds did not call one.
#include "replication/replicator.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <vector>
#include <thread>

#include "config/load.h"
#include "datastore/memory_datastore.h"
#include "log/log.h"
#include "test_support.h"

namespace {

using praefect::StatusCode;
using praefect::StatusOr;
using namespace praefect::datastore;  // NOLINT: test file
using praefect::replication::Replicator;
using std::chrono::milliseconds;

constexpr char kConfig[] = R"(
listen_addr = "127.0.0.1:2305"
[[virtual_storage]]
name = "default"
[[virtual_storage.node]]
storage = "gitaly-1"
address = "unix:/nonexistent/gitaly-1.sock"
[[virtual_storage.node]]
storage = "gitaly-2"
address = "unix:/nonexistent/gitaly-2.sock"
[[virtual_storage.node]]
storage = "gitaly-3"
address = "unix:/nonexistent/gitaly-3.sock"
)";

struct Fixture {
  Fixture() {
    auto loaded = praefect::config::LoadString(kConfig, "replicator_test.toml", praefect::config::Environment{});
    expect_that(loaded.ok(), "test config loads");
    auto created = praefect::nodes::NodeSet::Create(*loaded.config, grpc::ChannelArguments());
    expect_that(created.ok(), "node set");
    nodes = std::move(*created);
    for (const auto& n : nodes->virtual_storages()[0].nodes) n->healthy = true;
    NewRepository repo{1, "default", "r.git", DeriveReplicaPath(1), "gitaly-1", {}, "corr", {}};
    assert_status_ok(store.CreateRepository(repo));
  }
  ReplicationJob Update(const std::string& source, const std::string& target) {
    return ReplicationJob{ChangeType::kUpdate, 1, "default", "r.git", DeriveReplicaPath(1), source, target};
  }
  MemoryDatastore store;
  std::unique_ptr<praefect::nodes::NodeSet> nodes;
};

// Keeps the entries logged while it is installed.
struct CapturedLog : praefect::log::Sink {
  void Write(const praefect::log::Entry& entry) override {
    std::string line(entry.message);
    praefect::log::Fields fields = entry.fields;  // sorted by key, as the text format writes them
    std::sort(fields.begin(), fields.end(), [](const auto& x, const auto& y) { return x.key < y.key; });
    for (const auto& f : fields) line += " " + f.key + "=" + f.value;
    std::lock_guard lock(mu);
    lines.push_back(line);
  }
  size_t Count(const std::string& part) {
    std::lock_guard lock(mu);
    return static_cast<size_t>(
        std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(part) != l.npos; }));
  }
  std::string All() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
  std::mutex mu;
  std::vector<std::string> lines;
};

// A target at the source's generation has nothing to take: replicating
// anyway could overwrite a write the target (say a new primary) has taken
// and not yet recorded.
void UpdateSkipsTargetAtTheSourcesGeneration(void**) {
  Fixture f;
  Replicator replicator(&f.store, f.nodes.get(), nullptr, praefect::replication::Options{});
  praefect::Status behind = replicator.RunJob(f.Update("gitaly-1", "gitaly-2"));
  expect_that(behind.code() == StatusCode::kUnavailable,
              "a target without the repository is replicated (the node cannot be reached): " + behind.ToString());
  assert_status_ok(f.store.SetGeneration(1, "gitaly-2", 0));
  assert_status_ok(replicator.RunJob(f.Update("gitaly-1", "gitaly-2")));
  // The target became the primary and took a write; the old primary's job
  // for it is not run either (no up-to-date source but itself).
  assert_status_ok(f.store.RecordWrite(Write{1, "gitaly-2", {}, {"gitaly-1", "gitaly-3"}, "w"}));
  assert_status_ok(replicator.RunJob(f.Update("gitaly-1", "gitaly-2")));
  auto meta = f.store.GetRepository("default", "r.git");
  expect_that((*meta)->UpToDate() == std::vector<std::string>{"gitaly-2"}, "gitaly-2 alone at generation 1");
}

// An update failing on its last attempt dies: deleted, logged as dying; a
// delete_replica job failing as often is still queued.
void LastFailureDiesAndDeletionsNeverDo(void**) {
  auto captured = std::make_shared<CapturedLog>();
  praefect::log::Default().SetSink(captured);
  Fixture f;
  assert_status_ok(f.store.RecordWrite(Write{1, "gitaly-1", {}, {"gitaly-2"}, "corr-w"}));
  NewRepository removed{2, "default", "d.git", DeriveReplicaPath(2), "gitaly-1", {}, "corr", {}};
  assert_status_ok(f.store.CreateRepository(removed));
  assert_status_ok(f.store.SetGeneration(2, "gitaly-3", 0));
  assert_status_ok(f.store.DeleteRepository("default", "d.git", "gitaly-1", "corr-d").status());
  praefect::replication::Options options;
  options.max_idle_wait = milliseconds(50);
  // The hook `praefect serve` asks for a reconciliation round with: called
  // once, for the update that died, never for the deletion.
  std::mutex dead_mu;
  std::vector<std::string> dead;
  options.on_dead = [&](const ReplicationJob& job) {
    std::lock_guard lock(dead_mu);
    dead.push_back(std::string(ChangeTypeName(job.change)) + " " + job.relative_path + " -> " +
                   job.target_node_storage);
  };
  Replicator replicator(&f.store, f.nodes.get(), nullptr, options);
  replicator.Start();
  // Four failures of the deletion take 0.5 + 1 + 2 s of pauses; the update
  // dies at its third.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((captured->Count("replication job died") == 0 || captured->Count("change=delete_replica") < 4) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  replicator.Stop();
  praefect::log::Default().SetSink(nullptr);
  expect_that(dead.size() == 1 && dead[0] == "update r.git -> gitaly-2",
              "on_dead called once, for the update: got " + std::to_string(dead.size()));
  const std::string log = captured->All();
  expect_that(captured->Count("replication job died: its replica stays outdated until the reconciler schedules it "
                              "again attempts_left=0 change=update correlation_id=corr-w error=") == 1,
              "the update died once, logged with its fields:\n" + log);
  expect_that(captured->Count("replication job died") == 1, "nothing else died:\n" + log);
  expect_that(captured->Count("replication job failed attempts_left=2 change=update") == 1,
              "its first failure logged as a failure:\n" + log);
  expect_that(captured->Count("change=delete_replica") >= 4, "the deletion failed 4 times:\n" + log);
  bool update_left = false, deletion_left = false;
  for (const auto& e : f.store.Jobs()) {
    update_left |= e.job.change == ChangeType::kUpdate;
    deletion_left |= e.job.change == ChangeType::kDeleteReplica && e.attempts_left == 3;
  }
  expect_that(!update_left, "the dead update's job is deleted");
  expect_that(deletion_left, "the deletion is still queued with all its attempts");
}

// The memory store, whose Acknowledge fails (UNAVAILABLE, as a database
// that cannot be reached) `failures` times, and which counts the heartbeats
// each job gets.
class FlakyAcknowledgements final : public Datastore {
 public:
  FlakyAcknowledgements(MemoryDatastore* inner, int failures) : inner_(inner), failures_(failures) {}
  StatusOr<std::vector<int64_t>> Acknowledge(JobState state, const std::vector<int64_t>& ids) override {
    if (failures_.fetch_sub(1) > 0) return praefect::Unavailable("the database cannot be reached");
    return inner_->Acknowledge(state, ids);
  }
  praefect::Status Heartbeat(const std::vector<int64_t>& ids) override {
    std::lock_guard lock(mu_);
    for (int64_t id : ids) ++heartbeats_[id];
    return praefect::Status::Ok();
  }
  int Heartbeats(int64_t id) {
    std::lock_guard lock(mu_);
    return heartbeats_[id];
  }
  StatusOr<int64_t> ReserveRepositoryId() override { return inner_->ReserveRepositoryId(); }
  praefect::Status CreateRepository(const NewRepository& r) override { return inner_->CreateRepository(r); }
  StatusOr<std::optional<RepositoryMetadata>> GetRepository(std::string_view vs, std::string_view rel) override {
    return inner_->GetRepository(vs, rel);
  }
  praefect::Status RecordWrite(const Write& w) override { return inner_->RecordWrite(w); }
  praefect::Status SetGeneration(int64_t id, std::string_view s, int64_t g) override {
    return inner_->SetGeneration(id, s, g);
  }
  StatusOr<std::optional<RepositoryMetadata>> DeleteRepository(std::string_view vs, std::string_view rel,
                                                                std::string_view except,
                                                                std::string_view corr) override {
    return inner_->DeleteRepository(vs, rel, except, corr);
  }
  StatusOr<std::vector<ReplicationEvent>> Dequeue(std::string_view vs, std::string_view t, int n) override {
    return inner_->Dequeue(vs, t, n);
  }
  StatusOr<int64_t> ReleaseStale(std::chrono::seconds s) override { return inner_->ReleaseStale(s); }
  praefect::Status RecordHealth(std::string_view p, const std::vector<NodeHealth>& c) override {
    return inner_->RecordHealth(p, c);
  }
  StatusOr<HealthyStorages> GetHealthyStorages(milliseconds w) override { return inner_->GetHealthyStorages(w); }
  StatusOr<PrimaryElection> GetPrimary(int64_t id, milliseconds w) override { return inner_->GetPrimary(id, w); }
  StatusOr<std::vector<std::string>> SetReplicationFactor(std::string_view vs, std::string_view rel, int f,
                                                          const std::vector<std::string>& c) override {
    return inner_->SetReplicationFactor(vs, rel, f, c);
  }
  StatusOr<int64_t> CountJobs(JobState s) override { return inner_->CountJobs(s); }
  void SetEnqueueListener(EnqueueListener l) override { inner_->SetEnqueueListener(std::move(l)); }

 private:
  MemoryDatastore* inner_;
  std::atomic<int> failures_;
  std::mutex mu_;
  std::map<int64_t, int> heartbeats_;  // GUARDED_BY(mu_)
};

// A job done while the database cannot be reached: its acknowledgement is
// retried until it goes through, and the job is heartbeated meanwhile (left
// to the stale sweep, a completed job would run again, and a failed one on
// its last attempt would die).
void AcknowledgementIsRetriedWhileTheDatabaseIsAway(void**) {
  Fixture f;
  assert_status_ok(f.store.SetGeneration(1, "gitaly-2", 0));
  assert_status_ok(f.store.RecordWrite(Write{1, "gitaly-1", {"gitaly-2"}, {"gitaly-3"}, "w"}));
  assert_status_ok(f.store.SetGeneration(1, "gitaly-3", 1));  // its job has nothing to do: it completes
  const int64_t id = f.store.Jobs().front().id;
  FlakyAcknowledgements flaky(&f.store, 4);  // 100 + 200 + 400 + 800 ms of pauses
  praefect::replication::Options options;
  options.heartbeat_interval = milliseconds(100);
  Replicator replicator(&flaky, f.nodes.get(), nullptr, options);
  replicator.Start();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!f.store.Jobs().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  replicator.Stop();
  expect_that(f.store.Jobs().empty(), "the job acknowledged once the database answered");
  expect_that(flaky.Heartbeats(id) >= 5, "heartbeats while the acknowledgement waited, got " +
                                              std::to_string(flaky.Heartbeats(id)));
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(UpdateSkipsTargetAtTheSourcesGeneration),
      cmocka_unit_test(LastFailureDiesAndDeletionsNeverDo),
      cmocka_unit_test(AcknowledgementIsRetriedWhileTheDatabaseIsAway),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
