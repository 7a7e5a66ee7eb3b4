#include "cli/operator_db.h"

#include <chrono>
#include <random>

#include "cli/sql_common.h"
#include "datastore/postgres/pool.h"

namespace praefect::cli {

StatusOr<std::unique_ptr<datastore::PostgresDatastore>> OpenOperatorStore(const config::Config& config,
                                                                           std::chrono::milliseconds timeout) {
  if (config.database.MainConnection().host.empty() && config.database.MainConnection().dbname.empty())
    return FailedPrecondition(
        "no [database] in the configuration: this command needs praefect's PostgreSQL database; configure "
        "[database] as the running praefect has it");
  auto probe = OpenDatabase(config, timeout);
  if (!probe.ok())
    return Status(probe.status().code(), probe.status().message() +
                                             " (check [database] in the configuration, and that PostgreSQL is "
                                             "running and accepts the connection)");
  datastore::postgres::PoolOptions options;
  options.size = 2;
  return std::make_unique<datastore::PostgresDatastore>(datastore::postgres::NewPool(config.database, options),
                                                        nullptr, timeout);
}

std::string NewCorrelationId(std::string_view command) {
  std::random_device rd;
  std::uniform_int_distribution<uint64_t> dist;
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(dist(rd)));
  return std::string(command) + "-" + buf;
}

}  // namespace praefect::cli
