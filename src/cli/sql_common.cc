#include "cli/sql_common.h"

#include <ostream>

#include "cli/flags.h"
#include "cli/load_config.h"
#include "datastore/postgres/conn_string.h"

namespace praefect::cli {

std::string SqlCommandName(std::string_view name) { return "praefect " + std::string(name); }

std::optional<config::Config> LoadConfigForSql(const Invocation& inv, std::string_view name) {
  if (!inv.config_path) {
    inv.err << SqlCommandName(name) << ": no configuration: run praefect -config FILE " << name << "\n";
    return std::nullopt;
  }
  config::LoadResult result = LoadConfigFile(*inv.config_path);
  if (!result.ok()) {
    for (const config::Problem& p : result.problems) inv.err << config::FormatProblemForHumans(p) << "\n";
    inv.err << SqlCommandName(name) << ": " << *inv.config_path << " is invalid (see above)\n";
    return std::nullopt;
  }
  return std::move(result.config);
}

StatusOr<std::unique_ptr<datastore::postgres::Connection>> OpenDatabase(const config::Config& config,
                                                                        std::chrono::milliseconds timeout) {
  using datastore::postgres::Clock;
  return datastore::postgres::Connection::Open(
      datastore::postgres::ConnString(config.database.MainConnection(), timeout), Clock::now() + timeout,
      std::chrono::milliseconds(0));
}

StatusOr<std::unique_ptr<datastore::postgres::Connection>> OpenSessionDatabase(const config::Config& config,
                                                                               std::chrono::milliseconds timeout) {
  using datastore::postgres::Clock;
  return datastore::postgres::Connection::Open(
      datastore::postgres::ConnString(config.database.SessionConnection(), timeout), Clock::now() + timeout,
      std::chrono::milliseconds(0));
}

int SqlFail(const Invocation& inv, std::string_view name, const Status& st) {
  inv.err << SqlCommandName(name) << ": fail: " << st.message() << "\n";
  return 1;
}

bool ParseBoolFlag(std::string_view arg, std::string_view name, bool* value, bool* bad) {
  std::optional<std::string_view> inline_value;
  if (!MatchFlag(arg, name, &inline_value)) return false;
  if (!inline_value) {
    *value = true;
    return true;
  }
  std::string_view v = *inline_value;
  // Go's strconv.ParseBool.
  if (v == "1" || v == "t" || v == "T" || v == "true" || v == "TRUE" || v == "True") {
    *value = true;
  } else if (v == "0" || v == "f" || v == "F" || v == "false" || v == "FALSE" || v == "False") {
    *value = false;
  } else {
    *bad = true;
  }
  return true;
}

}  // namespace praefect::cli
