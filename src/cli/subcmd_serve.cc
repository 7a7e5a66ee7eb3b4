// praefect -config FILE [serve]
//
// Loads and validates the configuration (every error printed with its line,
// as `configuration validate` does), checks that the database schema is
// current when [database] is set, and runs the server until SIGINT or
// SIGTERM; SIGHUP reloads the file with the same loader.
#include <chrono>
#include <ostream>
#include <thread>

#include "cli/load_config.h"
#include "cli/subcommand.h"
#include "datastore/postgres/migrator.h"
#include "log/log.h"
#include "server/server.h"
#include "systemd/notify.h"

namespace praefect::cli {
namespace {

// How long praefect started by systemd waits for a database that does not
// answer yet (PostgreSQL starting after praefect at boot, a failover of the
// database) before it gives up with exit code 1. Systemd's start timeout is
// extended (EXTEND_TIMEOUT_USEC) attempt by attempt meanwhile, so this is
// the bound, not TimeoutStartSec=.
constexpr std::chrono::minutes kDatabaseStartWait{5};
constexpr std::chrono::seconds kSchemaCheckTimeout{10};
constexpr std::chrono::seconds kRetryDelay{1};

// The schema check of `praefect serve`. Without systemd it fails at once,
// as it always did: an operator at a terminal wants the error now. Under
// systemd (Type=notify) a database that cannot be reached is waited for, up
// to kDatabaseStartWait, with STATUS= saying what is awaited; an outdated
// schema fails at once either way (waiting would not migrate it).
Status CheckSchemaAtStart(const config::Config& config, const std::string& config_path) {
  const bool wait = systemd::NotifyEnabled();
  const auto give_up = std::chrono::steady_clock::now() + kDatabaseStartWait;
  auto next_log = std::chrono::steady_clock::now();
  for (int attempt = 1;; ++attempt) {
    if (wait) systemd::NotifyExtendTimeout(kSchemaCheckTimeout + kRetryDelay + std::chrono::seconds(10));
    Status st = datastore::postgres::CheckSchema(config, config_path, kSchemaCheckTimeout);
    const bool unreachable = st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kDeadlineExceeded;
    if (st.ok() || !wait || !unreachable) return st;
    const auto now = std::chrono::steady_clock::now();
    if (now >= give_up)
      return Status(st.code(), std::string(st.message()) + " (waited " + std::to_string(kDatabaseStartWait.count()) +
                                   " minutes for the database to answer; start PostgreSQL or fix [database], "
                                   "then start praefect again)");
    systemd::NotifyStatus("waiting for the database to answer (attempt " + std::to_string(attempt) +
                          "): " + std::string(st.message()));
    if (now >= next_log) {
      log::Warn("waiting for the database to answer before serving; systemd's start timeout is extended meanwhile",
                {{"error", st.message()},
                 {"attempt", attempt},
                 {"gives_up_after_s", static_cast<long long>(
                                          std::chrono::duration_cast<std::chrono::seconds>(kDatabaseStartWait).count())}});
      next_log = now + std::chrono::seconds(30);
    }
    std::this_thread::sleep_for(kRetryDelay);
  }
}

}  // namespace

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
  // The database schema must be current before anything uses it (and
  // before READY=1 under systemd). Only when [database] is configured: this
  // release still serves without one.
  const config::Database& db = result.config->database;
  if (!db.host.empty() || !db.dbname.empty()) {
    if (Status st = CheckSchemaAtStart(*result.config, *inv.config_path); !st.ok()) {
      inv.err << "praefect: " << st.message() << "\n";
      return 1;
    }
  }
  server::RunOptions options;
  options.reload = [path = *inv.config_path] { return LoadConfigFile(path); };
  return server::Run(*result.config, inv.err, options);
}

}  // namespace praefect::cli
