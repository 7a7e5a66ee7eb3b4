#pragma once

#include <chrono>
#include <iosfwd>
#include <string>
#include <vector>

#include "config/config.h"

namespace praefect::cli {

// Praefect's nodes.PingAll (dial-nodes, and check's "gitaly node
// connectivity & disk access"): every node address of the configuration, in
// order: dial, health check, then ServerInfo for whether each storage
// configured there is served, readable and writeable. One line per step,
// "[<address>]: ..." with SUCCESS or ERROR, on `out` (null: quiet).
// Returns the addresses that failed a step.
std::vector<std::string> PingAll(const config::Config& config, std::chrono::milliseconds timeout, std::ostream* out);

}  // namespace praefect::cli
