// praefect -config FILE track-repository -virtual-storage S -relative-path R -replica-path P
//     -authoritative-storage T [-replicate-immediately]
//
// As Praefect's: starts tracking a repository that exists on a node (at
// replica path P on storage T) but not in the database. T's replica
// becomes the primary at generation 0; every other storage (a random
// default_replication_factor - 1 of them, when set) gets an update job, or
// is replicated to at once with -replicate-immediately. Uses the database
// and the nodes directly.
#include <ostream>

#include "cli/go_command.h"
#include "cli/operator_db.h"
#include "cli/praefect_client.h"
#include "cli/repository_tracker.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "track-repository";
    s.usage = "Praefect starts to track given repository";
    s.description =
        "This command adds a given repository to be tracked by Praefect.\n"
        "It checks if the repository exists on disk on the authoritative storage,\n"
        "and whether database records are absent from tracking the repository.\n"
        "If the 'replicate-immediately' flag is used, the command will attempt to replicate\n"
        "the repository to the secondaries. The command is blocked until the\n"
        "replication finishes. Otherwise, replication jobs will be created and will be executed eventually by\n"
        "Praefect in the background.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml track-repository -virtual-storage default \\\n"
        "  -relative-path @hashed/ab/cd/abcd.git -replica-path @hashed/ab/cd/abcd.git \\\n"
        "  -authoritative-storage gitaly-1";
    s.flags = {StringFlag("virtual-storage", "name of the repository's virtual storage", true),
               StringFlag("relative-path", "relative path to the repository", true, {"repository"}),
               StringFlag("replica-path", "relative path of the repository on the Gitaly storage", true),
               StringFlag("authoritative-storage", "storage with the repository to consider as authoritative"),
               BoolFlag("replicate-immediately", "kick off a replication immediately")};
    return s;
  }();
  return spec;
}

}  // namespace

int RunTrackRepository(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  auto config = LoadOperatorConfig(inv, "track-repository");
  if (!config) return 1;
  TrackRequest request{flags->String("relative-path"), flags->String("replica-path"),
                       flags->String("virtual-storage"), flags->String("authoritative-storage")};
  // Required with per-repository elections, which v16 always has; checked
  // after the configuration, as Praefect does (no help).
  if (request.authoritative_storage.empty())
    return PlainError(inv, "Required flag \"authoritative-storage\" not set");
  auto store = OpenOperatorStore(*config);
  if (!store.ok()) return PlainError(inv, "connect to database: " + store.status().message());
  Status st = TrackRepository(*config, store->get(), request, flags->Bool("replicate-immediately"), inv.out);
  inv.out << std::flush;
  if (!st.ok()) return PlainError(inv, st.message());
  return 0;
}

}  // namespace praefect::cli
