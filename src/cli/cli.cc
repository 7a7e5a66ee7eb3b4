#include "cli/cli.h"

#include <algorithm>
#include <array>
#include <iostream>
#include <string_view>

#include "cli/flags.h"
#include "cli/subcommand.h"

namespace praefect::cli {
namespace {

struct Subcommand {
  std::string_view name;
  int (*run)(const Invocation&);
  std::string_view summary;
};

constexpr std::array kSubcommands{
    Subcommand{"serve", RunServe, "run the praefect server (the default without a subcommand)"},
    Subcommand{"configuration", RunConfigurationValidate,
               "configuration validate: check a configuration and print every problem"},
    Subcommand{"dial-nodes", RunDialNodes, "check that every node can be reached, is healthy and serves its storages"},
    Subcommand{"sql-ping", RunSqlPing, "check that the database in [database] can be reached"},
    Subcommand{"sql-migrate", RunSqlMigrate, "apply the database migrations this praefect has and the database lacks"},
    Subcommand{"sql-migrate-status", RunSqlMigrateStatus, "list the database migrations and when each was applied"},
    Subcommand{"sql-migrate-down", RunSqlMigrateDown, "roll back the newest N database migrations (-f to do it)"},
    Subcommand{"replication-backlog", RunReplicationBacklog,
               "count replication jobs by state, per virtual storage and target storage"},
    Subcommand{"set-replication-factor", RunSetReplicationFactor,
               "assign N storages of a virtual storage to a repository (its replicas)"},
    Subcommand{"dataloss", RunDataloss, "list repositories that are unavailable or have outdated replicas"},
    Subcommand{"accept-dataloss", RunAcceptDataloss,
               "make one replica of a repository authoritative, accepting the loss of what others had"},
    Subcommand{"list-storages", RunListStorages, "list the nodes of each virtual storage"},
    Subcommand{"metadata", RunMetadata, "show what praefect records of a repository and its replicas"},
    Subcommand{"remove-repository", RunRemoveRepository,
               "remove a repository from the database and every node (a dry run without -apply)"},
    Subcommand{"track-repository", RunTrackRepository,
               "track a repository that exists on a node but not in the database"},
    Subcommand{"track-repositories", RunTrackRepositories,
               "track-repository for every line of a JSON lines file, all validated first"},
    Subcommand{"list-untracked-repositories", RunListUntrackedRepositories,
               "list repositories on the nodes' disks that the database does not track"},
    Subcommand{"check", RunCheck, "run the startup checks: database, nodes, unavailable repositories, clocks"},
    Subcommand{"verify", RunVerify, "mark replicas unverified, for background verification to check first"},
    Subcommand{"maintenance", RunMaintenance,
               "one pass: a reconciliation round, content verification, untracked repositories, repairs waited for"},
    Subcommand{"version", RunVersion, "print the version and exit"},
};

void PrintUsage(std::ostream& os) {
  os << "usage: praefect [-config FILE] [subcommand] [flags]\n\nsubcommands:\n";
  // Names and summaries in two columns, two spaces apart at the longest name.
  size_t width = 0;
  for (const Subcommand& s : kSubcommands) width = std::max(width, s.name.size());
  for (const Subcommand& s : kSubcommands) {
    os << "  " << s.name << std::string(width - s.name.size() + 2, ' ') << s.summary << '\n';
  }
  os << "\nSee praefect(8) and praefect.toml(5).\n";
}

}  // namespace

int Run(const std::vector<std::string>& argv, std::istream& in, std::ostream& out, std::ostream& err) {
  Invocation inv{std::nullopt, {}, in, out, err};
  size_t i = 1;
  for (; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    std::optional<std::string_view> inline_value;
    std::string_view value;
    if (MatchFlag(arg, "config", &inline_value)) {
      if (inline_value) value = *inline_value;
      if (!inline_value) {
        if (i + 1 >= argv.size()) {
          err << "praefect: flag needs an argument: -config FILE\n";
          return 2;
        }
        value = argv[++i];
      }
      inv.config_path = std::string(value);
    } else if (MatchFlag(arg, "version", &inline_value)) {
      return RunVersion(inv);
    } else if (MatchFlag(arg, "help", &inline_value) || MatchFlag(arg, "h", &inline_value)) {
      PrintUsage(out);
      return 0;
    } else if (arg.starts_with("-")) {
      err << "praefect: unknown flag " << arg << "\n\n";
      PrintUsage(err);
      return 2;
    } else {
      break;
    }
  }
  std::string_view name = i < argv.size() ? std::string_view(argv[i]) : std::string_view("serve");
  if (i < argv.size()) ++i;
  inv.args.assign(argv.begin() + static_cast<std::ptrdiff_t>(i), argv.end());

  // Removed from Praefect in 14.1; not in the usage, but it answers.
  if (name == "reconcile") return RunReconcile(inv);
  for (const Subcommand& s : kSubcommands) {
    if (s.name != name) continue;
    if (name == "configuration") {
      // Praefect spells it as a two-word command.
      if (inv.args.empty() || inv.args[0] != "validate") {
        err << "praefect: unknown command \"configuration" << (inv.args.empty() ? "" : " " + inv.args[0])
            << "\": the only configuration command is \"configuration validate\"\n";
        return 2;
      }
      inv.args.erase(inv.args.begin());
    }
    return s.run(inv);
  }
  err << "praefect: unknown subcommand \"" << name << "\"\n\n";
  PrintUsage(err);
  return 2;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  return Run(args, std::cin, std::cout, std::cerr);
}

}  // namespace praefect::cli
