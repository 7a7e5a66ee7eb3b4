// praefect -config FILE reconcile ...
//
// Removed from Praefect in 14.1: v16 has no such subcommand, and the name
// reaches its root action, which logs "praefect doesn't accept positional
// arguments" and exits 1. We print that line as v16 does, for scripts that
// match it, then say what replaced the command and what this praefect
// does instead: it reconciles automatically, as Praefect does.
#include <ostream>

#include "cli/go_command.h"
#include "cli/subcommand.h"

namespace praefect::cli {

int RunReconcile(const Invocation& inv) {
  PlainError(inv, "praefect doesn't accept positional arguments");
  inv.err << "praefect reconcile: this command was removed in Praefect 14.1; Praefect replaced it with automatic\n"
             "reconciliation, which schedules replication jobs for outdated replicas in the background.\n"
             "This praefect reconciles automatically too: every [reconciliation] scheduling_interval (default\n"
             "5m, one praefect of the cluster at a time) and at once when a node becomes healthy again. To run a\n"
             "reconciliation round now (and content verification) run\n"
             "  praefect -config FILE maintenance\n"
             "To list\n"
             "outdated replicas run\n"
             "  praefect -config FILE dataloss -partially-unavailable\n"
             "and to make one replica the latest version run\n"
             "  praefect -config FILE accept-dataloss -virtual-storage S -relative-path R -authoritative-storage T\n";
  return 1;
}

}  // namespace praefect::cli
