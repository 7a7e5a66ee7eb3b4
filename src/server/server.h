#pragma once

#include <functional>
#include <iosfwd>

#include "config/config.h"
#include "config/load.h"

// The composition root of `praefect serve`: builds the registry, node
// channels, metrics, coordinator, proxy and praefect's own services from a
// validated Config, serves until SIGINT or SIGTERM, then stops gracefully
// (in-flight calls get graceful_stop_timeout to finish). SIGHUP reloads the
// configuration (server/reload.h). Under systemd (Type=notify) it tells the
// service manager READY=1, STATUS=, RELOADING=1 and STOPPING=1, and feeds
// the watchdog; without $NOTIFY_SOCKET none of that happens.
namespace praefect::server {

struct RunOptions {
  // Loads the configuration file again, the way praefect serve loaded it,
  // for a SIGHUP reload. Empty: SIGHUP logs that reloading is unavailable.
  std::function<config::LoadResult()> reload;
};

// Returns the process exit code: 0 after a clean stop, 1 when praefect
// could not start (the reason is written to `err` and logged).
// REQUIRES: called from the main thread before any other thread exists
// (it blocks SIGINT/SIGTERM/SIGHUP for every thread it starts).
int Run(const config::Config& config, std::ostream& err, const RunOptions& options = {});

}  // namespace praefect::server
