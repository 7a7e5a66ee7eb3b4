#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/load.h"
#include "coordinator/coordinator.h"
#include "nodes/node_set.h"

// What a SIGHUP changes in a running praefect, and what it cannot.
namespace praefect::server {

// Sets the process logger from [logging]: level, and the sink: the journal
// with structured fields when stderr is the unit's journal stream, else
// text or JSON lines on stderr as `format` says.
void ApplyLogging(const config::Logging& logging);

// The checks `praefect serve` makes beyond config validation before it
// starts (something to listen on, a supported election strategy, a
// readable TLS certificate and key), each problem a sentence that says what
// to do. A reload refuses a configuration with any.
std::vector<std::string> ServeProblems(const config::Config& config);

// The settings that differ between `running` and `next` and take effect
// only at the next start (listeners, database, virtual storages and their
// nodes' addresses and tokens, failover, replication, registry...), as
// config keys.
std::vector<std::string> RestartRequired(const config::Config& running, const config::Config& next);

// Applies what can change live from `next` (validated, ServeProblems
// empty): logging level and format, [auth] token and transitioning, [tls]
// (which the TLS listeners then load), graceful_stop_timeout, the nodes' tokens (when the virtual storages
// differ in nothing else); logs each change, and each changed setting that
// needs a restart. Returns the configuration now in force: `running` with
// the live settings of `next`, so that the next reload compares against
// what actually runs.
config::Config ApplyReload(const config::Config& running, const config::Config& next,
                           coordinator::Coordinator* coordinator, nodes::NodeSet* nodes);

}  // namespace praefect::server

namespace praefect::server {

// A SIGHUP: RELOADING=1 (with MONOTONIC_USEC) to systemd, `load` the file
// again, refuse it when it has errors or ServeProblems (each logged, the
// running configuration kept) or ApplyReload it, then READY=1 either way.
// Returns the configuration now in force.
config::Config Reload(const config::Config& running, const std::function<config::LoadResult()>& load,
                      coordinator::Coordinator* coordinator, nodes::NodeSet* nodes);

}  // namespace praefect::server
