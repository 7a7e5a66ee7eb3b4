#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace praefect::cli {

// What a subcommand gets from the dispatcher: the global -config value (if
// given), its own arguments (after the subcommand name), and the process's
// standard streams (tests pass string streams). A subcommand returns the
// process exit code.
struct Invocation {
  std::optional<std::string> config_path;
  std::vector<std::string> args;
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// One file per subcommand (subcmd_<name>.cc), as in Praefect.
int RunVersion(const Invocation& inv);
int RunConfigurationValidate(const Invocation& inv);
int RunServe(const Invocation& inv);
int RunDialNodes(const Invocation& inv);
int RunSqlPing(const Invocation& inv);
int RunSqlMigrate(const Invocation& inv);
int RunSqlMigrateStatus(const Invocation& inv);
int RunSqlMigrateDown(const Invocation& inv);
int RunSetReplicationFactor(const Invocation& inv);
int RunReplicationBacklog(const Invocation& inv);
int RunDataloss(const Invocation& inv);
int RunAcceptDataloss(const Invocation& inv);
int RunListStorages(const Invocation& inv);
int RunMetadata(const Invocation& inv);
int RunRemoveRepository(const Invocation& inv);
int RunTrackRepository(const Invocation& inv);
int RunTrackRepositories(const Invocation& inv);
int RunListUntrackedRepositories(const Invocation& inv);
int RunVerify(const Invocation& inv);
int RunMaintenance(const Invocation& inv);
int RunCheck(const Invocation& inv);
// Removed from Praefect (14.1); says so and what replaced it.
int RunReconcile(const Invocation& inv);

}  // namespace praefect::cli
