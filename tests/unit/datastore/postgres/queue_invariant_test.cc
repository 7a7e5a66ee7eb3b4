// The replication queue's invariant under concurrency, on a real
// PostgreSQL: a replica below its repository's latest generation always has
// a ready or in-progress job, so once writes stop and the queue drains,
// every replica is at the latest generation.
//
// Writers (one store, as one praefect's coordinator) record writes on a few
// repositories with three storages, the primary picked among the replicas
// a read just before found up to date (a view that may be stale by the
// write). Workers (other stores, as other praefects) do what the
// replicator does: Dequeue, GetRepository, skip when the target is already
// at the source's generation, else SetGeneration to the source's generation
// read at the start, then Acknowledge completed, or failed (10%, nothing
// recorded). Some jobs hang past the sweep's threshold. A sweeper releases
// stale jobs (threshold 0: every job in progress, hung or not, so late
// acknowledgements are common), a heartbeat thread keeps the others' job
// locks fresh, and a checker tests the invariant in one snapshot every few
// milliseconds. Jobs get 1,000,000 attempts here: a job that dies leaves
// its replica behind by design (the reconciler's to repair), and this test
// is about jobs that go missing. Every statement must succeed: a deadlock
// fails the test. A last case hammers one repository with writes while
// its replicas are recorded, removed and recorded again.
//
// It fails, each time, with the ready-job lock of RecordWrite removed, with
// the stale sweep re-readying a job under its old id, and (with voters)
// without the jobs for outdated voters.
//
// PRAEFECT_QUEUE_STRESS_SECONDS sets how long each case runs (default 4).
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "test_db.h"
#include "test_support.h"

using namespace praefect::datastore;  // NOLINT: test file
using praefect::StatusCode;
using std::chrono::milliseconds;

namespace {

using Db = praefect::testing::TestDb;
using Clock = std::chrono::steady_clock;

const std::vector<std::string> kStorages = {"gitaly-1", "gitaly-2", "gitaly-3"};
constexpr int kRepositories = 4;

std::string RelativePath(int i) { return "stress/" + std::to_string(i) + ".git"; }

// cmocka's assertions longjmp: on the main thread only. Elsewhere a
// failure prints what failed and aborts the test binary.
#define MUST(st, what)                                                                \
  do {                                                                               \
    const auto& must_ = (st);                                                        \
    if (!must_.ok()) {                                                               \
      fprintf(stderr, "%s: %s (%s:%d)\n", what, must_.ToString().c_str(), __FILE__, __LINE__); \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

// Replicas below the latest generation with no ready or in-progress job, as
// "relative_path storage generation/latest" items; NULL when none. One
// statement: one snapshot.
constexpr const char* kViolations = R"(
SELECT string_agg(r.relative_path || ' ' || st.storage || ' ' || COALESCE(s.generation, -1) || '/' || r.generation,
                  ', ' ORDER BY r.relative_path, st.storage)
FROM repositories r CROSS JOIN (VALUES ('gitaly-1'), ('gitaly-2'), ('gitaly-3')) AS st(storage)
LEFT JOIN storage_repositories s ON s.repository_id = r.repository_id AND s.storage = st.storage
WHERE COALESCE(s.generation, -1) < r.generation
  AND NOT EXISTS (SELECT 1 FROM replication_queue q
                  WHERE q.state IN ('ready', 'in_progress')
                    AND q.lock_id = r.virtual_storage || '|' || st.storage || '|' || r.relative_path))";

struct Stress {
  explicit Stress(bool voters) : voters(voters) {}

  // The writers' coordinator: the primary and, with voters, a random part of
  // the other replicas it saw up to date take the write; the rest get jobs.
  void WriteOnce(PostgresDatastore* store, std::mt19937& rng) {
    const std::string rel = RelativePath(static_cast<int>(rng() % kRepositories));
    auto meta = store->GetRepository("default", rel);
    MUST(meta.status(), "GetRepository");
    std::vector<std::string> up = (*meta)->UpToDate();
    Write w;
    w.repository_id = (*meta)->repository_id;
    w.primary = up[rng() % up.size()];
    w.correlation_id = "stress";
    for (const auto& s : kStorages) {
      if (s == w.primary) continue;
      const bool took = voters && std::find(up.begin(), up.end(), s) != up.end() && rng() % 2 == 0;
      (took ? w.updated : w.outdated).push_back(s);
    }
    praefect::Status st = store->RecordWrite(w);
    if (st.code() == StatusCode::kFailedPrecondition) return;  // the view was stale: not acknowledged
    MUST(st, "RecordWrite");
    ++writes;
  }

  // One job, as Replicator::Update does it.
  JobState Replicate(PostgresDatastore* store, const ReplicationEvent& event, std::mt19937& rng) {
    auto meta = store->GetRepository("default", event.job.relative_path);
    MUST(meta.status(), "GetRepository");
    const auto& repo = **meta;
    std::vector<std::string> up = repo.UpToDate();
    auto is_up = [&](const std::string& s) { return std::find(up.begin(), up.end(), s) != up.end(); };
    std::string source = event.job.source_node_storage;
    if (!is_up(source) || source == event.job.target_node_storage) {
      source.clear();
      for (const auto& s : up)
        if (s != event.job.target_node_storage) source = s;
    }
    if (source.empty()) return JobState::kCompleted;
    int64_t source_generation = 0, target_generation = -1;
    for (const auto& r : repo.replicas) {
      if (r.storage == source) source_generation = r.generation;
      if (r.storage == event.job.target_node_storage) target_generation = r.generation;
    }
    if (target_generation >= source_generation) return JobState::kCompleted;
    if (rng() % 10 == 0) return JobState::kFailed;  // ReplicateRepository failed
    if (rng() % 20 == 0) {
      // Hung: no heartbeat while it runs, past the sweeper's threshold.
      {
        std::lock_guard lock(mu);
        heartbeated.erase(event.id);
      }
      std::this_thread::sleep_for(milliseconds(5 + rng() % 30));
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    }
    MUST(store->SetGeneration(repo.repository_id, event.job.target_node_storage, source_generation), "SetGeneration");
    return JobState::kCompleted;
  }

  void Work(PostgresDatastore* store, unsigned seed) {
    std::mt19937 rng(seed);
    while (!workers_stop.load()) {
      bool any = false;
      for (const auto& target : kStorages) {
        auto jobs = store->Dequeue("default", target, 3);
        MUST(jobs.status(), "Dequeue");
        for (const auto& event : *jobs) {
          any = true;
          {
            std::lock_guard lock(mu);
            heartbeated.insert(event.id);
          }
          JobState outcome = Replicate(store, event, rng);
          // Retried as the replicator retries it; an error here (a deadlock
          // with the sweep) is counted and fails the test at the end.
          auto acked = store->Acknowledge(outcome, {event.id});
          for (int retry = 0; !acked.ok() && retry < 100; ++retry) {
            NoteError("Acknowledge", acked.status());
            acked = store->Acknowledge(outcome, {event.id});
          }
          MUST(acked.status(), "Acknowledge");
          late_acks += acked->empty();
          ++jobs_run;
          std::lock_guard lock(mu);
          heartbeated.erase(event.id);
        }
      }
      if (!any) std::this_thread::sleep_for(milliseconds(1));
    }
  }

  void Run(Db& db, std::chrono::seconds duration) {
    assert_true(praefect::testing::PgServer::Shared().Psql(
        db.name, "ALTER TABLE replication_queue ALTER COLUMN attempt SET DEFAULT 1000000"));
    auto writer_store = db.Store();
    for (int i = 0; i < kRepositories; ++i) {
      NewRepository r{1000 + i, "default", RelativePath(i), DeriveReplicaPath(1000 + i), "gitaly-1",
                      {"gitaly-2", "gitaly-3"}, "create", {}};
      assert_status_ok(writer_store->CreateRepository(r));
    }
    std::vector<std::unique_ptr<PostgresDatastore>> worker_stores;
    for (int i = 0; i < 2; ++i) worker_stores.push_back(db.Store());
    auto sweeper_store = db.Store();

    std::vector<std::thread> writers, workers, others;
    for (unsigned i = 0; i < 3; ++i)
      writers.emplace_back([&, i] {
        std::mt19937 rng(100 + i);
        while (!writers_stop.load()) WriteOnce(writer_store.get(), rng);
      });
    for (unsigned i = 0; i < 4; ++i)
      workers.emplace_back([&, i] { Work(worker_stores[i % worker_stores.size()].get(), 200 + i); });
    others.emplace_back([&] {
      while (!workers_stop.load()) {
        auto released = sweeper_store->ReleaseStale(std::chrono::seconds(0));
        if (released.ok()) {
          this->released += *released;
        } else {
          NoteError("ReleaseStale", released.status());
        }
        std::this_thread::sleep_for(milliseconds(20));
      }
    });
    others.emplace_back([&] {
      while (!workers_stop.load()) {
        std::vector<int64_t> ids;
        {
          std::lock_guard lock(mu);
          ids.assign(heartbeated.begin(), heartbeated.end());
        }
        if (praefect::Status st = sweeper_store->Heartbeat(ids); !st.ok()) NoteError("Heartbeat", st);
        std::this_thread::sleep_for(milliseconds(5));
      }
    });
    others.emplace_back([&] {
      // Its own connection: db.sql is the main thread's.
      auto conn = praefect::datastore::postgres::Connection::Open(db.conninfo, praefect::testing::In(milliseconds(5000)),
                                                                   milliseconds(0));
      MUST(conn.status(), "connecting the checker");
      while (!workers_stop.load()) {
        auto rows = (*conn)->Exec(kViolations, {}, praefect::testing::In(milliseconds(10000)));
        MUST(rows.status(), "checking the invariant");
        ++checks;
        if (!rows->empty() && !rows->IsNull(0, 0)) {
          std::lock_guard lock(mu);
          if (first_violation.empty()) first_violation = rows->Text(0, 0);
          ++violations;
        }
        std::this_thread::sleep_for(milliseconds(2));
      }
    });

    std::this_thread::sleep_for(duration);
    writers_stop = true;
    for (auto& t : writers) t.join();
    // Drain: the workers and the sweeper go on until nothing is left to do.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (Clock::now() < deadline &&
           db.Scalar("SELECT count(*) FROM replication_queue WHERE state IN ('ready', 'in_progress')") != "0")
      std::this_thread::sleep_for(milliseconds(50));
    workers_stop = true;
    for (auto& t : workers) t.join();
    for (auto& t : others) t.join();
    fprintf(stderr,
            "queue stress (%s): %lld writes, %lld jobs run, %lld released as stale, %lld late acknowledgements, "
            "%lld invariant checks, %lld found a replica behind with no job, %lld errors\n",
            voters ? "with voters" : "primary only", writes.load(), jobs_run.load(), released.load(),
            late_acks.load(), checks.load(), violations.load(), errors.load());
    expect_that(errors.load() == 0, "no statement failed (a deadlock between the sweep and an acknowledgement); "
                                    "first: " + first_error);
    expect_that(violations.load() == 0,
                "no replica behind its repository's generation without a job; first seen: " + first_violation);
    const std::string left = db.Scalar("SELECT count(*) FROM replication_queue");
    expect_that(left == "0", "the queue drained, " + left + " job(s) left");
    const std::string behind = db.Scalar(kViolations);
    expect_that(behind.empty(), "every replica at the latest generation after the drain; behind: " + behind);
  }

  void NoteError(const char* what, const praefect::Status& st) {
    ++errors;
    std::lock_guard lock(mu);
    if (first_error.empty()) first_error = std::string(what) + ": " + st.ToString();
  }

  const bool voters;
  std::atomic<bool> writers_stop{false}, workers_stop{false};
  std::atomic<long long> writes{0}, jobs_run{0}, released{0}, late_acks{0}, checks{0}, violations{0};
  std::mutex mu;
  std::set<int64_t> heartbeated;  // GUARDED_BY(mu)
  std::string first_violation;    // GUARDED_BY(mu)
  std::string first_error;        // GUARDED_BY(mu)
  std::atomic<long long> errors{0};
};

std::chrono::seconds Duration() {
  const char* env = std::getenv("PRAEFECT_QUEUE_STRESS_SECONDS");
  return std::chrono::seconds(env != nullptr ? std::atoi(env) : 4);
}

// The coordinator as it is: the primary alone takes a write.
void PrimaryOnlyWrites(void**) {
  Db db;
  Stress(false).Run(db, Duration());
}

// Transactions: replicas the coordinator saw up to date vote and take the
// write too; the view may be stale, so one may have missed an earlier write.
void WritesWithVoters(void**) {
  Db db;
  Stress(true).Run(db, Duration());
}

// Many writes to one repository at once, while a worker records
// replications: each is recorded (or refused as not at the latest
// generation), none fails on a deadlock.
void ConcurrentWritesToOneRepositoryNeverDeadlock(void**) {
  Db db;
  auto store = db.Store();
  NewRepository r{1, "default", "hot.git", DeriveReplicaPath(1), "gitaly-1", {}, "create", {}};
  assert_status_ok(store->CreateRepository(r));
  std::atomic<bool> stop{false};
  std::atomic<long long> recorded{0}, failed{0};
  std::mutex mu;
  std::string first;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i)
    threads.emplace_back([&] {
      auto own = db.Store();
      while (!stop.load()) {
        praefect::Status st = own->RecordWrite(Write{1, "gitaly-1", {}, {"gitaly-2", "gitaly-3"}, "hot"});
        if (st.ok()) {
          ++recorded;
          continue;
        }
        ++failed;
        std::lock_guard lock(mu);
        if (first.empty()) first = st.ToString();
      }
    });
  // Replicas recorded meanwhile: a new row's foreign key takes a share lock
  // on the repository's row, beside the writers' locks (gitaly-3's row is
  // removed and recorded again, over and over).
  threads.emplace_back([&] {
    auto own = db.Store();
    auto conn = praefect::datastore::postgres::Connection::Open(db.conninfo, praefect::testing::In(milliseconds(5000)),
                                                                 milliseconds(0));
    MUST(conn.status(), "connecting");
    for (int64_t g = 0; !stop.load(); ++g) {
      MUST(own->SetGeneration(1, "gitaly-2", g / 4), "SetGeneration");
      MUST(own->SetGeneration(1, "gitaly-3", 0), "SetGeneration");
      MUST((*conn)->Exec("DELETE FROM storage_repositories WHERE storage = 'gitaly-3'", {},
                         praefect::testing::In(milliseconds(5000))).status(), "deleting a replica");
    }
  });
  std::this_thread::sleep_for(Duration());
  stop = true;
  for (auto& t : threads) t.join();
  fprintf(stderr, "one repository: %lld writes recorded, %lld failed\n", recorded.load(), failed.load());
  expect_that(failed.load() == 0, "every write recorded; first failure: " + first);
  expect_that(db.Scalar("SELECT generation FROM repositories WHERE repository_id = 1") == std::to_string(recorded.load()),
              "the generation counts every write");
}

}  // namespace

int main() {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(PrimaryOnlyWrites),
      cmocka_unit_test(WritesWithVoters),
      cmocka_unit_test(ConcurrentWritesToOneRepositoryNeverDeadlock),
  };
  return cmocka_run_group_tests(tests, nullptr, nullptr);
}
