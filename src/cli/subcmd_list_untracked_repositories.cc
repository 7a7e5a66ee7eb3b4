// praefect -config FILE list-untracked-repositories [-older-than DURATION] [-delimiter S]
//
// As Praefect's: walks every node's storage (InternalGitaly/WalkRepos,
// directly on the node) and prints, as JSON, each repository on disk that
// the database has no replica record of for that storage, leaving out those
// modified within -older-than (default 6h: a repository being created is
// on disk before it is recorded).
#include <grpcpp/grpcpp.h>

#include <ostream>

#include "cli/go_command.h"
#include "cli/operator_db.h"
#include "cli/praefect_client.h"
#include "common/duration.h"
#include "common/json.h"
#include "nodes/node_set.h"
#include "reconcile/untracked.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "list-untracked-repositories";
    s.usage = "list repositories that are on disk but not tracked in the database";
    s.description =
        "This command checks whether all repositories on all Gitaly nodes are tracked by Praefect.\n"
        "If a repository is found on the disk, but it is not known to Praefect, then the location of\n"
        "that repository will be written to the standard output stream in JSON format.\n"
        "\n"
        "NOTE:\n"
        "All errors and log messages are written to the standard error stream.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml list-untracked-repositories -older-than 24h";
    s.flags = {DurationFlag("older-than",
                            "only include repositories created before this duration (default: 6h0m0s)"),
               StringFlag("delimiter", "string used as a delimiter in output (default: \"\\n\")")};
    return s;
  }();
  return spec;
}

}  // namespace

int RunListUntrackedRepositories(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  Duration older_than = std::chrono::hours(6);
  if (flags->Has("older-than")) older_than = *ParseGoDuration(flags->String("older-than"));
  const std::string delimiter = flags->Has("delimiter") ? flags->String("delimiter") : "\n";
  auto config = LoadOperatorConfig(inv, "list-untracked-repositories");
  if (!config) return 1;

  std::vector<reconcile::UntrackedWalk> walks;
  for (const auto& vs : config->virtual_storages) {
    for (const auto& node : vs.nodes) {
      auto channel = nodes::Dial(node.address, grpc::ChannelArguments());
      if (channel.ok() &&
          !(*channel)->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)))
        channel = Unavailable("no connection within 10 s: is the node running, and is the address right?");
      if (!channel.ok())
        return PlainError(inv, "dial nodes: dial with " + GoQuote(node.storage) + " gitaly at " +
                                   GoQuote(node.address) + ": " + channel.status().message());
      reconcile::UntrackedWalk walk;
      walk.virtual_storage = vs.name;
      walk.storage = node.storage;
      walk.address = node.address;
      walk.token = node.token;
      walk.channel = *channel;
      walks.push_back(std::move(walk));
    }
  }
  auto store = OpenOperatorStore(*config);
  if (!store.ok()) return PlainError(inv, "connect to database: " + store.status().message());

  const auto cutoff = std::chrono::system_clock::now() -
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(older_than);
  bool header_printed = false;
  for (reconcile::UntrackedWalk& walk : walks) {
    walk.cutoff = cutoff;
    Status st = reconcile::WalkUntracked(walk, store->get(), [&](const std::string& path) {
      if (!header_printed) {
        inv.out << "The following repositories were found on disk, but missing from the tracking database:\n";
        header_printed = true;
      }
      inv.out << "{\"relative_path\":" << JsonQuote(path) << ",\"storage\":" << JsonQuote(walk.storage)
              << ",\"virtual_storage\":" << JsonQuote(walk.virtual_storage) << "}" << delimiter << std::flush;
      return Status::Ok();
    });
    if (!st.ok()) {
      inv.out << std::flush;
      return PlainError(inv, st.message());
    }
  }
  inv.out << std::flush;
  return 0;
}

}  // namespace praefect::cli
