#pragma once

#include <iosfwd>

#include "config/config.h"

// The composition root of `praefect serve`: builds the registry, node
// channels, metrics, coordinator, proxy and praefect's own services from a
// validated Config, serves until SIGINT or SIGTERM, then stops gracefully
// (in-flight calls get graceful_stop_timeout to finish).
namespace praefect::server {

// Returns the process exit code: 0 after a clean stop, 1 when praefect
// could not start (the reason is written to `err` and logged).
// REQUIRES: called from the main thread before any other thread exists
// (it blocks SIGINT/SIGTERM for every thread it starts).
int Run(const config::Config& config, std::ostream& err);

}  // namespace praefect::server
