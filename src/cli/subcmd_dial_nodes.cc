// praefect -config FILE dial-nodes [-timeout DURATION]
//
// For every node address of the configuration, as Praefect's dial-nodes:
// dial it, check its health, then ask ServerInfo whether every storage
// configured on that address is served, readable and writeable. One line
// per step, "[<address>]: ..." with SUCCESS or ERROR; exit status 1 when any
// node failed a step.
#include <ostream>
#include <set>
#include <vector>

#include "cli/flags.h"
#include "cli/load_config.h"
#include "cli/node_ping.h"
#include "cli/subcommand.h"
#include "common/duration.h"

namespace praefect::cli {
namespace {

constexpr const char kUsage[] = "usage: praefect -config FILE dial-nodes [-timeout DURATION]\n";

}  // namespace

int RunDialNodes(const Invocation& inv) {
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
  for (size_t i = 0; i < inv.args.size(); ++i) {
    const std::string& arg = inv.args[i];
    std::string value;
    std::optional<std::string_view> inline_value;
    if (MatchFlag(arg, "timeout", &inline_value)) {
      if (inline_value) {
        value = std::string(*inline_value);
      } else if (i + 1 < inv.args.size()) {
        value = inv.args[++i];
      } else {
        inv.err << "praefect dial-nodes: flag needs an argument: -timeout\n" << kUsage;
        return 2;
      }
    } else {
      inv.err << "praefect dial-nodes: unknown argument \"" << arg << "\"\n" << kUsage;
      return 2;
    }
    auto d = ParseGoDuration(value);
    if (!d.ok() || d->count() <= 0) {
      inv.err << "praefect dial-nodes: -timeout \"" << value << "\": expected a positive duration such as 10s\n";
      return 2;
    }
    timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  if (!inv.config_path) {
    inv.err << "praefect dial-nodes: no configuration: run praefect -config FILE dial-nodes\n";
    return 1;
  }
  config::LoadResult result = LoadConfigFile(*inv.config_path);
  if (!result.ok()) {
    for (const config::Problem& p : result.problems) inv.err << config::FormatProblemForHumans(p) << "\n";
    inv.err << "praefect dial-nodes: " << *inv.config_path << " is invalid (see above)\n";
    return 1;
  }
  const std::vector<std::string> failed = PingAll(*result.config, timeout, &inv.out);
  if (!failed.empty()) {
    size_t addresses = 0;
    std::set<std::string> seen;
    for (const auto& vs : result.config->virtual_storages)
      for (const auto& node : vs.nodes) addresses += seen.insert(node.address).second ? 1 : 0;
    inv.err << "praefect dial-nodes: " << failed.size() << " of " << addresses << " node(s) unhealthy\n";
    return 1;
  }
  return 0;
}

}  // namespace praefect::cli
