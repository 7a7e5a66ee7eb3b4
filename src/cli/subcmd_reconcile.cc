// praefect -config FILE reconcile ...
//
// Removed from Praefect in 14.1: v16 has no such subcommand, and the name
// reaches its root action, which logs "praefect doesn't accept positional
// arguments" and exits 1. We print that line as v16 does, for scripts that
// match it, then say what replaced the command and what this praefect
// offers instead: it does not have Praefect's automatic reconciliation yet.
#include <ostream>

#include "cli/go_command.h"
#include "cli/subcommand.h"

namespace praefect::cli {

int RunReconcile(const Invocation& inv) {
  PlainError(inv, "praefect doesn't accept positional arguments");
  inv.err << "praefect reconcile: this command was removed in Praefect 14.1; Praefect replaced it with automatic\n"
             "reconciliation, which schedules replication jobs for outdated replicas in the background.\n"
             "This praefect does not reconcile automatically yet: an outdated replica is brought up to date by\n"
             "the replication job of the repository's next write. To list outdated replicas run\n"
             "  praefect -config FILE dataloss -partially-unavailable\n"
             "and to make one replica the latest version run\n"
             "  praefect -config FILE accept-dataloss -virtual-storage S -relative-path R -authoritative-storage T\n";
  return 1;
}

}  // namespace praefect::cli
