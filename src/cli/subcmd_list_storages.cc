// praefect -config FILE list-storages [-virtual-storage S]
//
// As Praefect's: the configured nodes of every virtual storage (or of S),
// in configuration order, as a borderless table. Reads the configuration
// only.
#include <ostream>

#include "cli/go_command.h"
#include "cli/operator_output.h"
#include "cli/praefect_client.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "list-storages";
    s.usage = "list physical storages for virtual storages";
    s.description =
        "List the storage nodes configured for each virtual storage, or for the one given, with their\n"
        "addresses. Reads the configuration only.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml list-storages -virtual-storage default";
    s.flags = {StringFlag("virtual-storage", "name of the virtual storage to list (default: all)")};
    return s;
  }();
  return spec;
}

}  // namespace

int RunListStorages(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  auto config = LoadOperatorConfig(inv, "list-storages");
  if (!config) return 1;
  const bool one = flags->Has("virtual-storage");
  const std::string wanted = flags->String("virtual-storage");
  std::vector<std::vector<std::string>> rows;
  bool found = false;
  for (const auto& vs : config->virtual_storages) {
    if (one && vs.name != wanted) continue;
    found = true;
    for (const auto& node : vs.nodes) rows.push_back({vs.name, node.storage, node.address});
  }
  if (one && !found) {
    inv.out << "No virtual storages named " << wanted << ".\n";
    return 0;
  }
  inv.out << FormatStorageTable(rows);
  return 0;
}

}  // namespace praefect::cli
