// praefect -config FILE set-replication-factor -virtual-storage V -repository R -replication-factor N
//
// As Praefect's: assigns N of the virtual storage's configured storages to
// the repository (keeping its primary), schedules the replicas the change
// adds or removes, and prints "current assignments: gitaly-1, gitaly-2".
// -relative-path is a synonym of -repository.
#include <charconv>
#include <ostream>

#include "cli/flags.h"
#include "cli/sql_common.h"
#include "datastore/postgres/pool.h"
#include "datastore/postgres_datastore.h"

namespace praefect::cli {
namespace {

constexpr const char kName[] = "set-replication-factor";
constexpr const char kUsage[] =
    "usage: praefect -config FILE set-replication-factor -virtual-storage NAME -repository RELATIVE_PATH "
    "-replication-factor N\n";

struct Flags {
  std::string virtual_storage;
  std::string repository;
  std::string factor;
};

// Parses inv.args into `flags`; prints the problem and returns false when
// they are not usable.
bool ParseFlags(const Invocation& inv, Flags* flags) {
  const std::string prefix = SqlCommandName(kName);
  for (size_t i = 0; i < inv.args.size(); ++i) {
    const std::string& arg = inv.args[i];
    std::optional<std::string_view> inline_value;
    std::string* target = nullptr;
    if (MatchFlag(arg, "virtual-storage", &inline_value)) {
      target = &flags->virtual_storage;
    } else if (MatchFlag(arg, "repository", &inline_value) || MatchFlag(arg, "relative-path", &inline_value)) {
      target = &flags->repository;
    } else if (MatchFlag(arg, "replication-factor", &inline_value)) {
      target = &flags->factor;
    } else {
      inv.err << prefix << ": unexpected argument \"" << arg << "\"\n" << kUsage;
      return false;
    }
    if (inline_value) {
      *target = std::string(*inline_value);
    } else if (i + 1 < inv.args.size()) {
      *target = inv.args[++i];
    } else {
      inv.err << prefix << ": flag needs an argument: " << arg << "\n" << kUsage;
      return false;
    }
  }
  const char* missing = flags->virtual_storage.empty() ? "-virtual-storage"
                        : flags->repository.empty()    ? "-repository"
                        : flags->factor.empty()        ? "-replication-factor"
                                                       : nullptr;
  if (missing != nullptr) {
    inv.err << prefix << ": " << missing << " is required\n" << kUsage;
    return false;
  }
  return true;
}

}  // namespace

int RunSetReplicationFactor(const Invocation& inv) {
  const std::string prefix = SqlCommandName(kName);
  Flags flags;
  if (!ParseFlags(inv, &flags)) return 1;
  int factor = 0;
  const std::string& f = flags.factor;
  auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), factor);
  if (ec != std::errc() || end != f.data() + f.size()) {
    inv.err << prefix << ": -replication-factor \"" << f << "\" is not a number\n" << kUsage;
    return 1;
  }
  auto config = LoadConfigForSql(inv, kName);
  if (!config) return 1;
  const config::VirtualStorage* vs = nullptr;
  std::string known;
  for (const auto& v : config->virtual_storages) {
    if (v.name == flags.virtual_storage) vs = &v;
    known += (known.empty() ? "\"" : ", \"") + v.name + "\"";
  }
  if (vs == nullptr) {
    inv.err << prefix << ": virtual storage \"" << flags.virtual_storage << "\" is not configured in "
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
  datastore::PostgresDatastore store(datastore::postgres::NewPool(config->database, options), nullptr);
  auto assigned = store.SetReplicationFactor(vs->name, flags.repository, factor, configured);
  if (!assigned.ok()) return SqlFail(inv, kName, assigned.status());
  inv.out << "current assignments: ";
  for (size_t i = 0; i < assigned->size(); ++i) inv.out << (i > 0 ? ", " : "") << (*assigned)[i];
  inv.out << "\n";
  return 0;
}

}  // namespace praefect::cli
