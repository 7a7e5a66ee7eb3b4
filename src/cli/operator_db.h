#pragma once

#include <memory>
#include <string>

#include "common/status_or.h"
#include "config/config.h"
#include "datastore/postgres_datastore.h"

// What the operator subcommands that use the database directly share
// (remove-repository, track-repository, track-repositories,
// list-untracked-repositories, check), as Praefect's openDB: the database
// in [database], dialled within 30 s.
namespace praefect::cli {

// A store on [database], after one connection proved it reachable within
// `timeout`. The error is the connection's ("connect to database: " is the
// caller's prefix) and says what to check.
StatusOr<std::unique_ptr<datastore::PostgresDatastore>> OpenOperatorStore(
    const config::Config& config, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// A correlation id for the jobs and calls of one command run.
std::string NewCorrelationId(std::string_view command);

}  // namespace praefect::cli
