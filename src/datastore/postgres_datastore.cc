#include "datastore/postgres_datastore.h"

#include "datastore/postgres_sql.h"
#include "log/log.h"

namespace praefect::datastore {
namespace {

using postgres::Rows;
using sql::P;
using sql::UpdateJob;

// The assignments column of the metadata queries: sorted, NULL when none.
constexpr const char* kAssignedColumn =
    "(SELECT array_agg(a.storage ORDER BY a.storage) FROM repository_assignments a "
    "WHERE a.repository_id = r.repository_id)";

// Metadata from rows of (repository_id, replica_path, primary, storage,
// generation, assigned, latest generation), one per replica (storage NULL
// when there is none).
StatusOr<RepositoryMetadata> MetadataFromRows(const Rows& rows, std::string_view virtual_storage,
                                              std::string_view relative_path) {
  RepositoryMetadata meta;
  auto id = rows.Int64(0, 0);
  if (!id.ok()) return id.status();
  meta.repository_id = *id;
  meta.virtual_storage = std::string(virtual_storage);
  meta.relative_path = std::string(relative_path);
  meta.replica_path = rows.Text(0, 1);
  meta.primary = rows.Text(0, 2);
  meta.assigned = ParseTextArray(rows.Text(0, 5));
  if (!rows.IsNull(0, 6)) {
    auto latest = rows.Int64(0, 6);
    if (!latest.ok()) return latest.status();
    meta.generation = *latest;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows.IsNull(i, 3)) continue;
    auto gen = rows.Int64(i, 4);
    if (!gen.ok()) return gen.status();
    meta.replicas.push_back(Replica{rows.Text(i, 3), *gen});
    meta.generation = std::max(meta.generation, *gen);
  }
  return meta;
}

// Runs `statements` in one transaction on one connection and returns the
// rows of the last. On an error the transaction is rolled back (a ROLLBACK
// that fails leaves the connection broken, and the pool drops it).
StatusOr<Rows> InTransaction(postgres::Pool& pool, postgres::Deadline deadline,
                             const std::vector<std::pair<std::string, std::vector<postgres::Param>>>& statements) {
  auto lease = pool.Acquire(deadline);
  if (!lease.ok()) return lease.status();
  if (auto begun = (*lease)->Exec("BEGIN", {}, deadline); !begun.ok()) return begun.status();
  StatusOr<Rows> last = Rows();
  for (const auto& [sql, params] : statements) {
    last = (*lease)->Exec(sql, params, deadline);
    if (!last.ok()) break;
  }
  if (!last.ok()) {
    (void)(*lease)->Exec("ROLLBACK", {}, postgres::Clock::now() + std::chrono::seconds(5));
    return last.status();
  }
  if (auto committed = (*lease)->Exec("COMMIT", {}, deadline); !committed.ok()) return committed.status();
  return last;
}

ChangeType ParseChange(const std::string& text) {
  return text == "delete_replica" ? ChangeType::kDeleteReplica : ChangeType::kUpdate;
}

}  // namespace

std::string TextArray(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ",";
    out += "\"";
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\"";
  }
  return out + "}";
}

std::vector<std::string> ParseTextArray(std::string_view text) {
  std::vector<std::string> out;
  if (text.size() < 2 || text.front() != '{') return out;
  size_t i = 1;
  while (i < text.size() && text[i] != '}') {
    std::string value;
    if (text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        value += text[i];
      }
      ++i;  // the closing quote
    } else {
      while (i < text.size() && text[i] != ',' && text[i] != '}') value += text[i++];
    }
    out.push_back(std::move(value));
    if (i < text.size() && text[i] == ',') ++i;
  }
  return out;
}

PostgresDatastore::PostgresDatastore(std::unique_ptr<postgres::Pool> pool,
                                     std::unique_ptr<postgres::Listener> listener,
                                     std::chrono::milliseconds call_timeout)
    : pool_(std::move(pool)), listener_conn_(std::move(listener)), call_timeout_(call_timeout) {
  if (listener_conn_) listen_thread_ = std::thread([this] { ListenLoop(); });
}

PostgresDatastore::~PostgresDatastore() {
  stopping_ = true;
  if (listen_thread_.joinable()) listen_thread_.join();
}

void PostgresDatastore::ListenLoop() {
  bool listening = false;
  while (!stopping_.load()) {
    if (!listening) {
      Status st = listener_conn_->Listen("replication_queue_enqueued", Deadline());
      listening = st.ok();
      if (!st.ok()) {
        log::Warn("replication: cannot LISTEN for new jobs; workers poll until the database is back",
                  {{"error", st.message()}});
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
        continue;
      }
    }
    auto got = listener_conn_->Wait(std::chrono::milliseconds(200));
    if (!got.ok()) continue;  // the Listener re-dials and re-LISTENs
    bool any = !got->empty() || listener_conn_->TakeReconnected();
    if (!any) continue;
    EnqueueListener listener;
    {
      std::lock_guard lock(mu_);
      listener = listener_;
    }
    if (listener) listener("", "");
  }
}

void PostgresDatastore::SetEnqueueListener(EnqueueListener listener) {
  std::lock_guard lock(mu_);
  listener_ = std::move(listener);
}

StatusOr<int64_t> PostgresDatastore::ReserveRepositoryId() {
  auto rows = pool_->Exec("SELECT nextval(pg_get_serial_sequence('repositories', 'repository_id'))", {}, Deadline());
  if (!rows.ok()) return rows.status();
  return rows->Int64(0, 0);
}

Status PostgresDatastore::CreateRepository(const NewRepository& repo) {
  const std::string sql = R"(
WITH r AS (
  INSERT INTO repositories (repository_id, virtual_storage, relative_path, replica_path, "primary", generation)
  VALUES ($1, $2, $3, $4, $5, 0)
  RETURNING repository_id, virtual_storage, relative_path, replica_path
), replica AS (
  INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, generation)
  SELECT DISTINCT repository_id, virtual_storage, relative_path, s, 0 FROM r, unnest($5::text || $9::text[]) AS s
), assigned AS (
  INSERT INTO repository_assignments (repository_id, virtual_storage, relative_path, storage)
  SELECT DISTINCT r.repository_id, r.virtual_storage, r.relative_path, a FROM r, unnest($8::text[]) AS a
)
INSERT INTO replication_queue (lock_id, job, meta)
SELECT )" + std::string(sql::kLockId) +
                          ", " + UpdateJob("$5::text") + R"(, jsonb_build_object('correlation_id', $7::text)
FROM r, unnest($6::text[]) AS t)";
  auto rows = pool_->Exec(sql,
                          {P(repo.repository_id), P(repo.virtual_storage), P(repo.relative_path), P(repo.replica_path),
                           P(repo.primary), TextArray(repo.outdated), P(repo.correlation_id), TextArray(repo.assigned),
                           TextArray(repo.updated)},
                          Deadline());
  if (rows.status().code() == StatusCode::kAlreadyExists)
    return Status(StatusCode::kAlreadyExists, "repository \"" + repo.relative_path +
                                                  "\" already exists in virtual storage \"" + repo.virtual_storage +
                                                  "\"");
  return rows.status();
}

StatusOr<std::optional<RepositoryMetadata>> PostgresDatastore::GetRepository(std::string_view virtual_storage,
                                                                             std::string_view relative_path) {
  auto rows = pool_->Exec(R"(
SELECT r.repository_id, r.replica_path, COALESCE(r."primary", ''), s.storage, s.generation, )" +
                              std::string(kAssignedColumn) + R"(, r.generation
FROM repositories r LEFT JOIN storage_repositories s USING (repository_id)
WHERE r.virtual_storage = $1 AND r.relative_path = $2
ORDER BY s.storage)",
                          {P(virtual_storage), P(relative_path)}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<RepositoryMetadata>();
  auto meta = MetadataFromRows(*rows, virtual_storage, relative_path);
  if (!meta.ok()) return meta.status();
  return std::optional<RepositoryMetadata>(std::move(*meta));
}

// The compare-and-set on generations, in one transaction of two statements.
// The first locks the repositories row (every statement that changes a
// repository's generations, primary or assignments locks it first, so they
// serialize on it); the second does the work with a snapshot taken once the
// lock is held, so it sees the writes recorded before it. Both in one
// statement, as this was, two writes to one repository could deadlock
// (PostgreSQL reported each waiting for the other on the repository's row:
// one for a tuple lock, the other for the first's transaction; 2 of 30
// one-second runs of queue_invariant_test, when replicas were being
// recorded, whose foreign keys share-lock that row): a statement that
// waited for the lock still read the row as of its start, so its UPDATE
// went through the superseded version and queued for that version's tuple
// lock, held by a writer waiting for it. SetGeneration changes a replica
// without the repositories lock, so the replicas are still read with a row
// lock (`replicas`): locking returns the newest version of each row, which
// is what the compare must see.
//
// The replicas that get a job (`targets`) are `outdated` and also any of
// `updated` that was not at the latest generation: it took the write but is
// not bumped (it had missed an earlier one), and without a job here its own
// job, if one was running, read the generations before this write and
// leaves it a generation behind with nothing pending.
Status PostgresDatastore::RecordWrite(const Write& write) {
  std::vector<std::string> took = write.updated;
  took.push_back(write.primary);
  const std::string lock_id(sql::kLockId);
  const std::string sql = R"(
WITH r AS MATERIALIZED (
  SELECT repository_id, virtual_storage, relative_path, replica_path, COALESCE(generation, 0) AS latest
  FROM repositories WHERE repository_id = $1
), replicas AS MATERIALIZED (
  SELECT s.storage, s.generation FROM r JOIN storage_repositories s USING (repository_id)
  FOR NO KEY UPDATE OF s
), ok AS MATERIALIZED (
  SELECT r.* FROM r JOIN replicas p ON p.storage = $4::text AND p.generation = r.latest
), repository AS (
  UPDATE repositories SET generation = ok.latest + 1 FROM ok WHERE repositories.repository_id = ok.repository_id
), bumped AS (
  UPDATE storage_repositories s SET generation = ok.latest + 1
  FROM ok, replicas p
  WHERE s.repository_id = ok.repository_id AND s.storage = p.storage AND p.generation = ok.latest
    AND p.storage = ANY($2::text[])
), targets AS MATERIALIZED (
  SELECT t FROM unnest($3::text[]) AS t
  UNION
  SELECT t FROM ok, unnest($2::text[]) AS t
  WHERE t <> $4::text AND NOT EXISTS (SELECT 1 FROM replicas p WHERE p.storage = t AND p.generation = ok.latest)
), ready AS MATERIALIZED (
  -- A ready job for an outdated replica already covers this write (it reads
  -- the generations when it runs), but only if it is still ready when this
  -- commits: locking it keeps a replication worker from taking it until
  -- then (Dequeue skips locked jobs), and a job a worker took meanwhile is
  -- no longer ready when the lock is granted (READ COMMITTED re-checks the
  -- row), so a new job is queued. Without the lock, a job taken between
  -- this statement's start and its commit recorded the old generation and
  -- the write's job was never queued: the replica stayed a generation
  -- behind with nothing pending.
  SELECT q.lock_id FROM replication_queue q, ok AS r
  WHERE q.state = 'ready' AND q.job->>'change' = 'update' AND q.job->>'source_node_storage' = $4::text
    AND q.lock_id IN (SELECT )" + lock_id + R"( FROM targets)
  FOR UPDATE OF q
), jobs AS (
  INSERT INTO replication_queue (lock_id, job, meta)
  SELECT )" + lock_id + ", " + UpdateJob("$4::text") + R"(, jsonb_build_object('correlation_id', $5::text)
  FROM ok AS r, targets
  WHERE NOT EXISTS (SELECT 1 FROM ready WHERE ready.lock_id = )" + lock_id + R"()
)
SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM ok))";
  auto rows = InTransaction(
      *pool_, Deadline(),
      {{"SELECT 1 FROM repositories WHERE repository_id = $1 FOR NO KEY UPDATE", {P(write.repository_id)}},
       {sql,
        {P(write.repository_id), TextArray(took), TextArray(write.outdated), P(write.primary),
         P(write.correlation_id)}}});
  if (!rows.ok()) return rows.status();
  auto found = rows->Int64(0, 0);
  auto recorded = rows->Int64(0, 1);
  if (!found.ok()) return found.status();
  if (!recorded.ok()) return recorded.status();
  if (*found == 0) return NotFound("repository " + std::to_string(write.repository_id) + " is no longer registered");
  if (*recorded == 0)
    return FailedPrecondition("storage \"" + write.primary + "\" is not at the latest generation of repository " +
                              std::to_string(write.repository_id) + ": it missed an earlier write");
  return Status::Ok();
}

Status PostgresDatastore::SetGeneration(int64_t repository_id, std::string_view storage, int64_t generation) {
  auto rows = pool_->Exec(R"(
INSERT INTO storage_repositories (repository_id, virtual_storage, relative_path, storage, generation)
SELECT repository_id, virtual_storage, relative_path, $2, $3 FROM repositories WHERE repository_id = $1
ON CONFLICT (repository_id, storage)
DO UPDATE SET generation = GREATEST(storage_repositories.generation, EXCLUDED.generation))",
                          {P(repository_id), P(storage), P(generation)}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->affected == 0) return NotFound("repository " + std::to_string(repository_id) + " is not registered");
  return Status::Ok();
}

StatusOr<std::optional<RepositoryMetadata>> PostgresDatastore::DeleteRepository(std::string_view virtual_storage,
                                                                                std::string_view relative_path,
                                                                                std::string_view except_storage,
                                                                                std::string_view correlation_id) {
  auto rows = pool_->Exec(R"(
WITH r AS (
  DELETE FROM repositories WHERE virtual_storage = $1 AND relative_path = $2
  RETURNING repository_id, virtual_storage, relative_path, replica_path, "primary", generation
), replicas AS (
  SELECT s.storage, s.generation FROM storage_repositories s JOIN r USING (repository_id)
), dropped AS (
  DELETE FROM replication_queue q USING r
  WHERE q.state = 'ready' AND (q.job->>'repository_id')::bigint = r.repository_id
), jobs AS (
  INSERT INTO replication_queue (lock_id, job, meta)
  SELECT r.virtual_storage || '|' || replicas.storage || '|' || r.relative_path,
         jsonb_build_object('change', 'delete_replica', 'repository_id', r.repository_id,
                            'virtual_storage', r.virtual_storage, 'relative_path', r.relative_path,
                            'replica_path', r.replica_path, 'source_node_storage', '',
                            'target_node_storage', replicas.storage),
         jsonb_build_object('correlation_id', $4::text)
  FROM r, replicas WHERE replicas.storage <> $3
)
SELECT r.repository_id, r.replica_path, COALESCE(r."primary", ''), replicas.storage, replicas.generation,
       )" + std::string(kAssignedColumn) + R"(, r.generation
FROM r LEFT JOIN replicas ON true)",
                          {P(virtual_storage), P(relative_path), P(except_storage), P(correlation_id)}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<RepositoryMetadata>();
  auto meta = MetadataFromRows(*rows, virtual_storage, relative_path);
  if (!meta.ok()) return meta.status();
  return std::optional<RepositoryMetadata>(std::move(*meta));
}

StatusOr<std::vector<ReplicationEvent>> PostgresDatastore::Dequeue(std::string_view virtual_storage,
                                                                   std::string_view target_node_storage, int count) {
  auto rows = pool_->Exec(R"(
WITH candidate AS (
  SELECT id, lock_id FROM replication_queue q
  WHERE state = 'ready' AND job->>'virtual_storage' = $1 AND job->>'target_node_storage' = $2
    AND NOT EXISTS (SELECT 1 FROM replication_queue_lock l WHERE l.id = q.lock_id AND l.acquired)
  ORDER BY id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
), one_per_lock AS (
  SELECT DISTINCT ON (lock_id) id, lock_id FROM candidate ORDER BY lock_id, id
), locked AS (
  INSERT INTO replication_queue_lock (id, acquired)
  SELECT lock_id, true FROM one_per_lock
  ON CONFLICT (id) DO UPDATE SET acquired = true WHERE replication_queue_lock.acquired = false
  RETURNING id
), taken AS (
  -- delete_replica jobs spend no attempt: a replica left on a storage that
  -- no longer holds the repository is removed however long its node is away.
  UPDATE replication_queue q SET state = 'in_progress', updated_at = now(),
    attempt = CASE WHEN q.job->>'change' = 'delete_replica' THEN q.attempt ELSE q.attempt - 1 END
  FROM one_per_lock o JOIN locked ON locked.id = o.lock_id
  WHERE q.id = o.id
  RETURNING q.id, q.lock_id, q.attempt, q.created_at, q.job, q.meta
), job_locks AS (
  INSERT INTO replication_queue_job_lock (job_id, lock_id) SELECT id, lock_id FROM taken
)
SELECT id, attempt, (extract(epoch from created_at) * 1000000)::bigint, job->>'change',
       (job->>'repository_id')::bigint, job->>'relative_path', job->>'replica_path',
       COALESCE(job->>'source_node_storage', ''), COALESCE(meta->>'correlation_id', '')
FROM taken ORDER BY id)",
                          {P(virtual_storage), P(target_node_storage), P(static_cast<int64_t>(count))}, Deadline());
  if (!rows.ok()) return rows.status();
  std::vector<ReplicationEvent> events;
  for (size_t i = 0; i < rows->size(); ++i) {
    ReplicationEvent e;
    auto id = rows->Int64(i, 0);
    auto attempt = rows->Int64(i, 1);
    auto created = rows->Int64(i, 2);
    auto repo_id = rows->Int64(i, 4);
    if (!id.ok() || !attempt.ok() || !created.ok() || !repo_id.ok())
      return Internal("dequeue: malformed job row " + rows->Text(i, 0));
    e.id = *id;
    e.state = JobState::kInProgress;
    e.attempts_left = static_cast<int>(*attempt);
    e.created_at = std::chrono::system_clock::time_point(std::chrono::microseconds(*created));
    e.job.change = ParseChange(rows->Text(i, 3));
    e.job.repository_id = *repo_id;
    e.job.virtual_storage = std::string(virtual_storage);
    e.job.relative_path = rows->Text(i, 5);
    e.job.replica_path = rows->Text(i, 6);
    e.job.source_node_storage = rows->Text(i, 7);
    e.job.target_node_storage = std::string(target_node_storage);
    e.correlation_id = rows->Text(i, 8);
    events.push_back(std::move(e));
  }
  return events;
}

// Acknowledge acts only on jobs whose job lock the caller still holds
// (`held`, locked first): a job the stale sweep released has lost its job
// lock and comes back under a new id (ReleaseStale), so a worker that was
// presumed dead and acknowledges late changes nothing, neither the job
// another worker took since nor its replica lock. Locking the job lock
// before the job, as ReleaseStale does, keeps the two from deadlocking.
// A replica lock is freed only when no other job lock holds it.
StatusOr<std::vector<int64_t>> PostgresDatastore::Acknowledge(JobState state, const std::vector<int64_t>& ids) {
  if (state != JobState::kCompleted && state != JobState::kFailed && state != JobState::kDead)
    return InvalidArgument("acknowledging jobs as " + std::string(JobStateName(state)) +
                           ": only completed, failed or dead end a job");
  if (ids.empty()) return std::vector<int64_t>();
  std::vector<std::string> id_texts;
  for (int64_t id : ids) id_texts.push_back(std::to_string(id));
  // completed and dead: the row goes (no terminal rows are kept); failed:
  // ready again while attempts remain (always for delete_replica), else it
  // goes as a dead one does.
  const std::string retry = state == JobState::kFailed
                                ? "q.attempt > 0 OR q.job->>'change' = 'delete_replica'"
                                : "false";
  const std::string sql = R"(
WITH held AS MATERIALIZED (
  SELECT job_id, lock_id FROM replication_queue_job_lock WHERE job_id = ANY($1::bigint[])
  ORDER BY job_id FOR UPDATE
), done AS MATERIALIZED (
  SELECT q.id, q.lock_id, )" + retry + R"( AS retry
  FROM replication_queue q JOIN held ON held.job_id = q.id
  WHERE q.state = 'in_progress'
  FOR UPDATE OF q
), retried AS (
  UPDATE replication_queue q SET state = 'ready', updated_at = now() FROM done WHERE q.id = done.id AND done.retry
), removed AS (
  DELETE FROM replication_queue q USING done WHERE q.id = done.id AND NOT done.retry
), released AS (
  DELETE FROM replication_queue_job_lock j USING done WHERE j.job_id = done.id
), unlocked AS (
  UPDATE replication_queue_lock l SET acquired = false FROM done
  WHERE l.id = done.lock_id
    AND NOT EXISTS (SELECT 1 FROM replication_queue_job_lock o
                    WHERE o.lock_id = l.id AND o.job_id <> ALL($1::bigint[]))
)
SELECT id FROM done ORDER BY id)";
  auto rows = pool_->Exec(sql, {TextArray(id_texts)}, Deadline());
  if (!rows.ok()) return rows.status();
  std::vector<int64_t> out;
  for (size_t i = 0; i < rows->size(); ++i) {
    auto id = rows->Int64(i, 0);
    if (id.ok()) out.push_back(*id);
  }
  return out;
}

Status PostgresDatastore::Heartbeat(const std::vector<int64_t>& ids) {
  if (ids.empty()) return Status::Ok();
  std::vector<std::string> id_texts;
  for (int64_t id : ids) id_texts.push_back(std::to_string(id));
  // SKIP LOCKED: a job lock someone holds is being released or acknowledged
  // (neither needs the heartbeat), and waiting for it with other job locks
  // held could deadlock with them.
  return pool_->Exec(R"(
UPDATE replication_queue_job_lock SET triggered_at = now() WHERE job_id IN (
  SELECT job_id FROM replication_queue_job_lock WHERE job_id = ANY($1::bigint[]) FOR UPDATE SKIP LOCKED))",
                     {TextArray(id_texts)}, Deadline())
      .status();
}

// A stale job (its job lock not heartbeated for `older_than`) is deleted and,
// while attempts remain (always for delete_replica), queued again as a new
// row: same job, created_at and attempts, new id. The new id is the fence
// against the worker that was presumed dead but is still running: its late
// Acknowledge names the old id and matches nothing (see Acknowledge), where
// re-readying the same row let it delete or re-ready the job another worker
// had taken since, and free that worker's replica lock under it; when that
// worker then failed, its own acknowledgement matched nothing either and
// the replica was left behind with no job. Job locks are locked first and
// jobs SKIP LOCKED: a job being acknowledged right now is left to that.
StatusOr<int64_t> PostgresDatastore::ReleaseStale(std::chrono::seconds older_than) {
  auto rows = pool_->Exec(R"(
WITH stale AS MATERIALIZED (
  SELECT job_id, lock_id FROM replication_queue_job_lock
  WHERE triggered_at < now() - make_interval(secs => $1)
  FOR UPDATE SKIP LOCKED
), jobs AS MATERIALIZED (
  SELECT q.* FROM replication_queue q JOIN stale ON stale.job_id = q.id
  WHERE q.state = 'in_progress'
  FOR UPDATE OF q SKIP LOCKED
), gone AS (
  DELETE FROM replication_queue q USING jobs WHERE q.id = jobs.id
), retried AS (
  INSERT INTO replication_queue (state, created_at, updated_at, attempt, lock_id, job, meta)
  SELECT 'ready', created_at, now(), attempt, lock_id, job, meta FROM jobs
  WHERE attempt > 0 OR job->>'change' = 'delete_replica'
), freed AS MATERIALIZED (
  -- The job locks to drop: those of the jobs above, and orphans whose job
  -- is no longer in progress (none are made, but one would hold its lock
  -- for ever); not those of a job being acknowledged at this moment.
  SELECT stale.* FROM stale
  WHERE stale.job_id IN (SELECT id FROM jobs)
     OR NOT EXISTS (SELECT 1 FROM replication_queue q WHERE q.id = stale.job_id AND q.state = 'in_progress')
), released AS (
  DELETE FROM replication_queue_job_lock j USING freed WHERE j.job_id = freed.job_id
), unlocked AS (
  UPDATE replication_queue_lock l SET acquired = false FROM freed
  WHERE l.id = freed.lock_id
    AND NOT EXISTS (SELECT 1 FROM replication_queue_job_lock o
                    WHERE o.lock_id = l.id AND o.job_id NOT IN (SELECT job_id FROM freed))
)
SELECT id, attempt > 0 OR job->>'change' = 'delete_replica', job->>'change', COALESCE(job->>'virtual_storage', ''),
       COALESCE(job->>'relative_path', ''), COALESCE(job->>'target_node_storage', ''),
       COALESCE(meta->>'correlation_id', '')
FROM jobs ORDER BY id)",
                          {P(static_cast<int64_t>(older_than.count()))}, Deadline());
  if (!rows.ok()) return rows.status();
  for (size_t i = 0; i < rows->size(); ++i) {
    if (rows->Text(i, 1) == "t") continue;
    log::Warn("replication job died: its replica stays outdated until the reconciler schedules it again",
              {{"job_id", rows->Text(i, 0)},
               {"change", rows->Text(i, 2)},
               {"virtual_storage", rows->Text(i, 3)},
               {"relative_path", rows->Text(i, 4)},
               {"target", rows->Text(i, 5)},
               {"correlation_id", rows->Text(i, 6)},
               {"error", "its worker stopped heartbeating for " + std::to_string(older_than.count()) +
                             " s during its last attempt"}});
  }
  const auto released = static_cast<int64_t>(rows->size());
  if (Status swept = SweepLeftovers(); !swept.ok())
    log::Warn("replication: cannot delete finished jobs left in the queue; retrying later",
              {{"error", swept.message()}});
  return released;
}

// Rows no worker takes and nothing deletes: 'completed', 'dead' and
// 'cancelled' rows that Praefect (and earlier versions of this store) kept,
// and Praefect's 'failed' rows, which it retried but this Dequeue does not
// (it takes 'ready' only, on a partial index): they go back to 'ready'. No
// index serves these states, so the statement reads the whole queue: it
// runs at most once a minute per process, 1,000 rows of each at a time.
Status PostgresDatastore::SweepLeftovers() {
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (swept_at_ && now - *swept_at_ < std::chrono::minutes(1)) return Status::Ok();
    swept_at_ = now;
  }
  auto rows = pool_->Exec(R"(
WITH finished AS (
  DELETE FROM replication_queue WHERE id IN (
    SELECT id FROM replication_queue WHERE state IN ('completed', 'dead', 'cancelled')
    LIMIT 1000 FOR UPDATE SKIP LOCKED)
  RETURNING id
), revived AS (
  UPDATE replication_queue SET state = 'ready', updated_at = now() WHERE id IN (
    SELECT id FROM replication_queue WHERE state = 'failed' LIMIT 1000 FOR UPDATE SKIP LOCKED)
  RETURNING id
)
SELECT (SELECT count(*) FROM finished), (SELECT count(*) FROM revived))",
                          {}, Deadline());
  if (!rows.ok()) return rows.status();
  if (rows->Text(0, 0) != "0" || rows->Text(0, 1) != "0")
    log::Info("replication: cleared jobs an earlier version left in the queue",
              {{"finished_jobs_deleted", rows->Text(0, 0)}, {"failed_jobs_made_ready", rows->Text(0, 1)}});
  return Status::Ok();
}

StatusOr<int64_t> PostgresDatastore::CountJobs(JobState state) {
  auto rows = pool_->Exec("SELECT count(*) FROM replication_queue WHERE state = $1", {P(JobStateName(state))},
                          Deadline());
  if (!rows.ok()) return rows.status();
  return rows->Int64(0, 0);
}

}  // namespace praefect::datastore
