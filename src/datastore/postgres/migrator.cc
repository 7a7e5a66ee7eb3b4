#include "datastore/postgres/migrator.h"

#include <algorithm>
#include <set>

#include "datastore/postgres/conn_string.h"

namespace praefect::datastore::postgres {
namespace {

constexpr const char kCreateTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TIMESTAMPTZ)";

}  // namespace

praefect::Status Migrator::Lock() {
  auto r = conn_->Exec("SELECT pg_advisory_lock($1)", {std::to_string(kMigrationLockKey)}, deadline_);
  if (!r.ok()) return r.status();
  return praefect::Status::Ok();
}

void Migrator::Unlock() {
  // A broken connection has lost the session, and the lock with it.
  if (!conn_->broken())
    (void)conn_->Exec("SELECT pg_advisory_unlock($1)", {std::to_string(kMigrationLockKey)}, deadline_);
}

const Migration* Migrator::Find(std::string_view id) const {
  for (const auto& m : migrations_) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

StatusOr<std::vector<std::pair<std::string, std::string>>> Migrator::Applied() {
  auto exists = conn_->Exec("SELECT to_regclass('schema_migrations') IS NOT NULL", {}, deadline_);
  if (!exists.ok()) return exists.status();
  std::vector<std::pair<std::string, std::string>> out;
  if (!exists->Bool(0, 0)) return out;
  auto r = conn_->Exec(
      "SELECT id, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || ' +0000 UTC' "
      "FROM schema_migrations ORDER BY id",
      {}, deadline_);
  if (!r.ok()) return r.status();
  for (size_t i = 0; i < r->size(); ++i) out.emplace_back(r->Text(i, 0), r->Text(i, 1));
  return out;
}

praefect::Status Migrator::RunInTransaction(std::string_view script, std::string_view record_sql,
                                            const std::string& id) {
  auto fail = [&](const praefect::Status& st) {
    if (!conn_->broken()) (void)conn_->ExecScript("ROLLBACK", deadline_);
    return praefect::Status(st.code(), "migration " + id + ": " + st.message());
  };
  if (praefect::Status st = conn_->ExecScript("BEGIN", deadline_); !st.ok()) return fail(st);
  if (praefect::Status st = conn_->ExecScript(script, deadline_); !st.ok()) return fail(st);
  if (auto r = conn_->Exec(record_sql, {id}, deadline_); !r.ok()) return fail(r.status());
  if (praefect::Status st = conn_->ExecScript("COMMIT", deadline_); !st.ok()) return fail(st);
  return praefect::Status::Ok();
}

StatusOr<std::vector<Migration>> Migrator::Pending() {
  auto applied = Applied();
  if (!applied.ok()) return applied.status();
  std::set<std::string> done;
  for (const auto& a : *applied) done.insert(a.first);
  std::vector<Migration> out;
  for (const auto& m : migrations_) {
    if (!done.contains(std::string(m.id))) out.push_back(m);
  }
  return out;
}

StatusOr<std::vector<std::string>> Migrator::Apply(bool ignore_unknown, const Progress& progress,
                                                   const Plan& plan) {
  if (praefect::Status st = Lock(); !st.ok()) return st;
  auto result = [&]() -> StatusOr<std::vector<std::string>> {
    if (auto r = conn_->Exec(kCreateTable, {}, deadline_); !r.ok()) return r.status();
    auto applied = Applied();
    if (!applied.ok()) return applied.status();
    if (!ignore_unknown) {
      std::string unknown;
      for (const auto& a : *applied) {
        if (Find(a.first) == nullptr) unknown += (unknown.empty() ? "" : ", ") + a.first;
      }
      if (!unknown.empty())
        return FailedPrecondition("the database has migrations this praefect does not know: " + unknown +
                                  " (applied by a newer praefect); upgrade praefect, or leave out "
                                  "-ignore-unknown=false to apply the migrations this praefect has anyway");
    }
    auto pending = Pending();
    if (!pending.ok()) return pending.status();
    if (plan) plan(*pending);
    std::vector<std::string> done;
    for (const Migration& m : *pending) {
      if (progress) progress(Event::kMigrating, m, {});
      auto start = Clock::now();
      if (praefect::Status st = RunInTransaction(
              m.up, "INSERT INTO schema_migrations (id, applied_at) VALUES ($1, now())", std::string(m.id));
          !st.ok())
        return st;
      if (progress) progress(Event::kApplied, m, Clock::now() - start);
      done.emplace_back(m.id);
    }
    return done;
  }();
  Unlock();
  return result;
}

StatusOr<std::vector<MigrationState>> Migrator::Status() {
  auto applied = Applied();
  if (!applied.ok()) return applied.status();
  std::vector<MigrationState> out;
  for (const auto& m : migrations_) out.push_back(MigrationState{std::string(m.id), false, false, ""});
  for (const auto& entry : *applied) {
    const auto& [id, at] = entry;
    auto it = std::find_if(out.begin(), out.end(), [&](const MigrationState& s) { return s.id == entry.first; });
    if (it == out.end()) {
      out.push_back(MigrationState{id, true, true, at});
    } else {
      it->applied = true;
      it->applied_at = at;
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return out;
}

StatusOr<std::vector<std::string>> Migrator::Down(int n, bool dry_run, const Progress& progress) {
  if (n < 1) return InvalidArgument("number of migrations to roll back must be 1 or more");
  if (praefect::Status st = Lock(); !st.ok()) return st;
  auto result = [&]() -> StatusOr<std::vector<std::string>> {
    auto applied = Applied();
    if (!applied.ok()) return applied.status();
    std::vector<std::string> plan;
    for (auto it = applied->rbegin(); it != applied->rend() && static_cast<int>(plan.size()) < n; ++it) {
      if (Find(it->first) == nullptr)
        return FailedPrecondition("cannot roll back migration " + it->first +
                                  ": this praefect does not know it (a newer praefect applied it); use that "
                                  "praefect's sql-migrate-down");
      plan.push_back(it->first);
    }
    if (dry_run) return plan;
    for (const auto& id : plan) {
      const Migration* m = Find(id);
      if (progress) progress(Event::kMigrating, *m, {});
      auto start = Clock::now();
      if (praefect::Status st = RunInTransaction(m->down, "DELETE FROM schema_migrations WHERE id = $1", id);
          !st.ok())
        return st;
      if (progress) progress(Event::kRolledBack, *m, Clock::now() - start);
    }
    return plan;
  }();
  Unlock();
  return result;
}

StatusOr<bool> Migrator::SchemaIsCurrent() {
  auto pending = Pending();
  if (!pending.ok()) return pending.status();
  return pending->empty();
}

praefect::Status CheckSchema(const config::Config& config, const std::string& config_path,
                             std::chrono::milliseconds timeout) {
  Deadline deadline = Clock::now() + timeout;
  auto conn = Connection::Open(ConnString(config.database.MainConnection(), timeout), deadline,
                               std::chrono::milliseconds(0));
  if (!conn.ok()) return conn.status();
  Migrator migrator(conn->get(), EmbeddedMigrations(), deadline);
  auto pending = migrator.Pending();
  if (!pending.ok()) return pending.status();
  if (pending->empty()) return praefect::Status::Ok();
  std::string ids;
  for (const auto& m : *pending) ids += (ids.empty() ? "" : ", ") + std::string(m.id);
  return FailedPrecondition("the database schema is outdated: " + std::to_string(pending->size()) +
                            " migration(s) not applied (" + ids + "); run praefect -config " + config_path +
                            " sql-migrate");
}

}  // namespace praefect::datastore::postgres
