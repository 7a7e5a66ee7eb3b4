// praefect -config FILE set-replication-factor -virtual-storage V -relative-path R -replication-factor N
//
// As Praefect v16's: asks the running praefect
// (PraefectInfoService/SetReplicationFactor) to assign N of the virtual
// storage's configured storages to the repository (keeping its primary),
// which schedules the replicas the change adds or removes, and prints
// "current assignments: gitaly-1, gitaly-2". -repository is a synonym of
// -relative-path.
//
// Unlike Praefect, when no praefect answers at the configured address the
// command writes the database itself, saying so on stderr: the assignments
// are the same, and a running praefect would only have added its cache
// invalidation, which a stopped one does not need.
#include <limits>
#include <ostream>

#include "cli/go_command.h"
#include "cli/praefect_client.h"
#include "cli/sql_common.h"
#include "datastore/postgres/pool.h"
#include "datastore/postgres_datastore.h"
#include "praefect/praefect.grpc.pb.h"

namespace praefect::cli {
namespace {

constexpr const char kName[] = "set-replication-factor";

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = kName;
    s.usage = "set a replication factor for a repository";
    s.description =
        "Assign N of the virtual storage's storages to the repository: replicas are created on storages that\n"
        "become assigned and removed from those that no longer are. The primary stays assigned. N must be\n"
        "at least 1 and at most the number of storages configured for the virtual storage. Goes through the\n"
        "running praefect; when none answers, writes the database directly and says so.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml set-replication-factor -virtual-storage default \\\n"
        "  -relative-path @hashed/ab/cd/abcd.git -replication-factor 2";
    FlagSpec factor = Int64Flag("replication-factor", "desired replication factor");
    factor.required = true;
    s.flags = {StringFlag("virtual-storage", "name of the repository's virtual storage", true),
               StringFlag("relative-path", "relative path of the repository in the virtual storage", true,
                          {"repository"}),
               factor};
    return s;
  }();
  return spec;
}

void PrintAssignments(const Invocation& inv, const std::vector<std::string>& storages) {
  inv.out << "current assignments: ";
  for (size_t i = 0; i < storages.size(); ++i) inv.out << (i > 0 ? ", " : "") << storages[i];
  inv.out << "\n";
}

// The fallback: the same change, made in [database] by this process.
int SetInDatabase(const Invocation& inv, const config::Config& config, const std::string& virtual_storage,
                  const std::string& relative_path, int factor) {
  const std::string prefix = SqlCommandName(kName);
  const config::VirtualStorage* vs = nullptr;
  std::string known;
  for (const auto& v : config.virtual_storages) {
    if (v.name == virtual_storage) vs = &v;
    known += (known.empty() ? "\"" : ", \"") + v.name + "\"";
  }
  if (vs == nullptr) {
    inv.err << prefix << ": virtual storage \"" << virtual_storage << "\" is not configured in "
            << *inv.config_path << " (configured: " << known << ")\n";
    return 1;
  }
  std::vector<std::string> configured;
  for (const auto& node : vs->nodes) configured.push_back(node.storage);
  // Checked before connecting: a wrong number needs no database to refuse.
  if (Status st = datastore::CheckReplicationFactor(factor, configured.size()); !st.ok()) {
    inv.err << prefix << ": virtual storage \"" << vs->name << "\": " << st.message() << "\n";
    return 1;
  }
  datastore::postgres::PoolOptions options;
  options.size = 1;
  datastore::PostgresDatastore store(datastore::postgres::NewPool(config.database, options), nullptr);
  auto assigned = store.SetReplicationFactor(vs->name, relative_path, factor, configured);
  if (!assigned.ok()) return SqlFail(inv, kName, assigned.status());
  PrintAssignments(inv, *assigned);
  return 0;
}

}  // namespace

int RunSetReplicationFactor(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  const int64_t factor = flags->Int64("replication-factor");
  if (factor < std::numeric_limits<int32_t>::min() || factor > std::numeric_limits<int32_t>::max())
    return PlainError(inv, "invalid value \"" + flags->String("replication-factor") +
                               "\" for flag -replication-factor: out of range");
  auto config = LoadOperatorConfig(inv, kName);
  if (!config) return 1;
  const std::string virtual_storage = flags->String("virtual-storage");
  const std::string relative_path = flags->String("relative-path");
  auto channel = DialPraefectOnce(*config, std::chrono::seconds(10));
  if (!channel.ok()) {
    inv.err << SqlCommandName(kName) << ": " << channel.status().message()
            << "; setting the replication factor in the database directly instead\n";
    return SetInDatabase(inv, *config, virtual_storage, relative_path, static_cast<int>(factor));
  }
  grpc::ClientContext ctx;
  PrepareContext(*config, &ctx, std::chrono::minutes(1));
  gitaly::SetReplicationFactorRequest request;
  request.set_virtual_storage(virtual_storage);
  request.set_relative_path(relative_path);
  request.set_replication_factor(static_cast<int32_t>(factor));
  gitaly::SetReplicationFactorResponse response;
  grpc::Status st = gitaly::PraefectInfoService::NewStub(*channel)->SetReplicationFactor(&ctx, request, &response);
  if (!st.ok()) return PlainError(inv, GoRpcError(st));
  PrintAssignments(inv, {response.storages().begin(), response.storages().end()});
  return 0;
}

}  // namespace praefect::cli
