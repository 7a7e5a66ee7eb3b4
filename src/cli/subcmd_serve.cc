// praefect -config FILE [serve]
//
// Loads and validates the configuration (every error printed with its line,
// as `configuration validate` does), checks that the database schema is
// current when [database] is set, and runs the server until SIGINT or
// SIGTERM.
#include <ostream>

#include "cli/load_config.h"
#include "cli/subcommand.h"
#include "datastore/postgres/migrator.h"
#include "server/server.h"

namespace praefect::cli {

int RunServe(const Invocation& inv) {
  if (!inv.args.empty()) {
    inv.err << "praefect serve: unexpected argument \"" << inv.args.front()
            << "\": usage: praefect -config FILE [serve]\n";
    return 1;
  }
  if (!inv.config_path) {
    inv.err << "praefect: no configuration: run praefect -config /etc/praefect/config.toml\n";
    return 1;
  }
  config::LoadResult result = LoadConfigFile(*inv.config_path);
  for (const config::Problem& p : result.problems) inv.err << config::FormatProblemForHumans(p) << "\n";
  if (!result.ok()) {
    inv.err << "praefect: " << *inv.config_path << " has " << result.error_count()
            << " error(s) (listed above): fix them, then start praefect again\n";
    return 1;
  }
  // The database schema must be current before anything uses it. Only when
  // [database] is configured: this release still serves without one.
  const config::Database& db = result.config->database;
  if (!db.host.empty() || !db.dbname.empty()) {
    if (Status st = datastore::postgres::CheckSchema(*result.config, *inv.config_path); !st.ok()) {
      inv.err << "praefect: " << st.message() << "\n";
      return 1;
    }
  }
  return server::Run(*result.config, inv.err);
}

}  // namespace praefect::cli
