// praefect -config FILE list-untracked-repositories [-older-than DURATION] [-delimiter S]
//
// As Praefect's: walks every node's storage (InternalGitaly/WalkRepos,
// directly on the node) and prints, as JSON, each repository on disk that
// the database has no replica record of for that storage, leaving out those
// modified within -older-than (default 6h: a repository being created is
// on disk before it is recorded).
#include <grpcpp/grpcpp.h>

#include <ostream>

#include "auth/token.h"
#include "cli/go_command.h"
#include "cli/operator_db.h"
#include "cli/praefect_client.h"
#include "common/duration.h"
#include "common/json.h"
#include "nodes/node_set.h"
#include "praefect/internal.grpc.pb.h"

namespace praefect::cli {
namespace {

constexpr size_t kBatch = 16;  // paths checked per database query, as Praefect

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

struct NodeChannel {
  const config::VirtualStorage* vs;
  const config::Node* node;
  std::shared_ptr<grpc::Channel> channel;
};

// Prints the untracked ones of `batch` (replica paths on `n`'s storage).
Status Report(datastore::TrackingStore* store, const NodeChannel& n, std::vector<std::string>* batch,
              const std::string& delimiter, bool* header_printed, std::ostream& out) {
  if (batch->empty()) return Status::Ok();
  auto untracked = store->UntrackedReplicaPaths(n.vs->name, n.node->storage, *batch);
  batch->clear();
  if (!untracked.ok())
    return Status(untracked.status().code(), "existence check: " + untracked.status().message());
  for (const std::string& path : *untracked) {
    if (!*header_printed) {
      out << "The following repositories were found on disk, but missing from the tracking database:\n";
      *header_printed = true;
    }
    out << "{\"relative_path\":" << JsonQuote(path) << ",\"storage\":" << JsonQuote(n.node->storage)
        << ",\"virtual_storage\":" << JsonQuote(n.vs->name) << "}" << delimiter << std::flush;
  }
  return Status::Ok();
}

Status WalkNode(datastore::TrackingStore* store, const NodeChannel& n, std::chrono::system_clock::time_point cutoff,
                const std::string& delimiter, bool* header_printed, std::ostream& out) {
  grpc::ClientContext ctx;
  if (!n.node->token.empty())
    ctx.AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                    auth::BearerV2(n.node->token, std::chrono::system_clock::now()));
  gitaly::WalkReposRequest request;
  request.set_storage_name(n.node->storage);
  auto reader = gitaly::InternalGitaly::NewStub(n.channel)->WalkRepos(&ctx, request);
  gitaly::WalkReposResponse response;
  std::vector<std::string> batch;
  while (reader->Read(&response)) {
    const auto modified = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::seconds(response.modification_time().seconds()) +
            std::chrono::nanoseconds(response.modification_time().nanos())));
    if (!(modified < cutoff)) continue;
    batch.push_back(response.relative_path());
    if (batch.size() == kBatch) {
      if (Status st = Report(store, n, &batch, delimiter, header_printed, out); !st.ok()) return st;
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok())
    return Status(static_cast<StatusCode>(st.error_code()),
                  "walking storage " + GoQuote(n.node->storage) + " at " + n.node->address + ": " + GoRpcError(st));
  return Report(store, n, &batch, delimiter, header_printed, out);
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

  std::vector<NodeChannel> nodes;
  for (const auto& vs : config->virtual_storages) {
    for (const auto& node : vs.nodes) {
      auto channel = nodes::Dial(node.address, grpc::ChannelArguments());
      if (channel.ok() &&
          !(*channel)->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10)))
        channel = Unavailable("no connection within 10 s: is the node running, and is the address right?");
      if (!channel.ok())
        return PlainError(inv, "dial nodes: dial with " + GoQuote(node.storage) + " gitaly at " +
                                   GoQuote(node.address) + ": " + channel.status().message());
      nodes.push_back(NodeChannel{&vs, &node, *channel});
    }
  }
  auto store = OpenOperatorStore(*config);
  if (!store.ok()) return PlainError(inv, "connect to database: " + store.status().message());

  const auto cutoff = std::chrono::system_clock::now() -
                      std::chrono::duration_cast<std::chrono::system_clock::duration>(older_than);
  bool header_printed = false;
  for (const NodeChannel& n : nodes) {
    Status st = WalkNode(store->get(), n, cutoff, delimiter, &header_printed, inv.out);
    if (!st.ok()) {
      inv.out << std::flush;
      return PlainError(inv, st.message());
    }
  }
  inv.out << std::flush;
  return 0;
}

}  // namespace praefect::cli
