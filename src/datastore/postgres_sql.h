#pragma once

// SQL fragments the PostgresDatastore's files share (postgres_datastore.cc,
// postgres_election.cc, postgres_replication_factor.cc). Internal: only
// those files and their tests include it.

#include <string>
#include <string_view>

#include "datastore/postgres/rows.h"

namespace praefect::datastore::sql {

inline postgres::Param P(std::string_view v) { return std::string(v); }
inline postgres::Param P(int64_t v) { return std::to_string(v); }

// An update job's JSON, built in SQL from the columns of a row `r`
// (repository_id, virtual_storage, relative_path, replica_path) and a
// target column `t`; `source` is an SQL expression.
std::string UpdateJob(std::string_view source);

// The lock_id of a job on target `t` of `r`: "<vs>|<target>|<relative_path>".
constexpr std::string_view kLockId = "r.virtual_storage || '|' || t || '|' || r.relative_path";

// Two CTE bodies, "active AS (...), healthy AS (...)", the quorum view of
// datastore.h's GetHealthyStorages; `window` is an SQL interval expression
// (a parameter, e.g. "$2::bigint * interval '1 millisecond'"). healthy has
// the columns virtual_storage, storage.
std::string HealthyCtes(std::string_view window);

// `window` as the interval expression of parameter `$n` (milliseconds).
std::string WindowParam(int n);

// Content verification's claim of the next $1 repositories of the walk
// (postgres_content.cc); here for its test, which reads its plan.
extern const char* const kContentClaim;

}  // namespace praefect::datastore::sql
