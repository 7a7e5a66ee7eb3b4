// praefect -config FILE remove-repository -virtual-storage S -relative-path R [-apply] [-db-only]
//
// As Praefect's: a dry run unless -apply. With -apply the running praefect
// removes the repository (RepositoryService/RemoveRepository: its metadata
// goes, the primary's replica is removed at once and every other replica
// gets a delete_replica job, which waits for a node that is down); with
// -apply -db-only only the database record goes and the replicas stay on
// disk. Either way the repository's other replication jobs are then
// dropped, waiting for those in progress to end.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <ostream>
#include <thread>

#include "cli/go_command.h"
#include "cli/operator_db.h"
#include "cli/praefect_client.h"
#include "praefect/gitaly_newer.pb.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "remove-repository";
    s.usage = "remove repository from Gitaly cluster";
    s.description =
        "Remove a repository from the database and from every storage of its virtual storage. Without\n"
        "-apply, only says whether the repository is tracked. With -apply -db-only, only the database\n"
        "record is removed and the replicas stay on disk. Replicas on nodes that are down are removed when\n"
        "the nodes are back (delete_replica jobs).\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml remove-repository -virtual-storage default \\\n"
        "  -relative-path @hashed/ab/cd/abcd.git -apply";
    s.flags = {StringFlag("virtual-storage", "name of the repository's virtual storage", true),
               StringFlag("relative-path", "relative path of the repository in the virtual storage", true,
                          {"repository"}),
               BoolFlag("apply", "physically remove the repository (without it: a dry run)"),
               BoolFlag("db-only", "with -apply, remove the repository from the database only, leaving the disk")};
    return s;
  }();
  return spec;
}

// RepositoryService/RemoveRepository on the running praefect, which knows
// the replicas and queues the removals it cannot make at once.
Status RemoveThroughPraefect(const config::Config& config, const std::string& vs, const std::string& path) {
  auto channel = DialPraefect(config, std::chrono::seconds(10));
  if (!channel.ok()) return channel.status();
  grpc::ClientContext ctx;
  PrepareContext(config, &ctx, std::chrono::seconds(30));
  ctx.AddMetadata("client_name", "remove-repository");
  gitaly::RemoveRepositoryRequest request;
  request.mutable_repository()->set_storage_name(vs);
  request.mutable_repository()->set_relative_path(path);
  gitaly::RemoveRepositoryResponse response;
  const grpc::internal::RpcMethod method("/gitaly.RepositoryService/RemoveRepository",
                                         grpc::internal::RpcMethod::NORMAL_RPC, *channel);
  grpc::Status st = grpc::internal::BlockingUnaryCall(channel->get(), method, &ctx, request, &response);
  if (!st.ok()) return Status(static_cast<StatusCode>(st.error_code()), GoRpcError(st));
  return Status::Ok();
}

// Drops the repository's jobs not in progress, every second, until none is
// in progress (a job in flight may still queue work for it).
Status RemoveJobs(datastore::TrackingStore* store, const std::string& vs, const std::string& path,
                  bool keep_deletions) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(10);
  while (true) {
    auto in_progress = store->RemoveReplicationJobs(vs, path, keep_deletions);
    if (!in_progress.ok()) return in_progress.status();
    if (*in_progress == 0) return Status::Ok();
    if (std::chrono::steady_clock::now() > deadline)
      return Unavailable(std::to_string(*in_progress) +
                         " replication job(s) of the repository stayed in progress for 10 minutes; run the "
                         "command again once praefect's replication is not stuck");
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

int RunRemoveRepository(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  const std::string vs = flags->String("virtual-storage");
  const std::string path = flags->String("relative-path");
  auto config = LoadOperatorConfig(inv, "remove-repository");
  if (!config) return 1;
  auto store = OpenOperatorStore(*config);
  if (!store.ok()) return PlainError(inv, "connect to database: " + store.status().message());

  auto found = (*store)->GetRepository(vs, path);
  if (!found.ok()) {
    inv.out << "error getting storages from database: " << found.status().message()
            << ". Please make sure the database parameters are set correctly and the database is accessible.\n";
  } else if (!found->has_value()) {
    return PlainError(inv, "repository is not being tracked in Praefect");
  } else {
    inv.out << "Repository found in the database.\n";
  }

  if (!flags->Bool("apply")) {
    inv.out << "Re-run the command with -apply to remove repositories from the database and disk or -apply and "
               "-db-only to remove from database only.\n";
    return 0;
  }
  if (flags->Bool("db-only")) {
    inv.out << "Attempting to remove " << path << " from the database...\n" << std::flush;
    auto removed = (*store)->DeleteRepositoryRecord(vs, path);
    if (!removed.ok()) return PlainError(inv, "remove repository from database: " + removed.status().message());
    inv.out << "Repository removal from database completed.\n" << std::flush;
    Status jobs = RemoveJobs(store->get(), vs, path, false);
    if (!jobs.ok()) return PlainError(inv, "remove replication events: " + jobs.message());
    return 0;
  }
  inv.out << "Attempting to remove " << path << " from the database, and delete it from all gitaly nodes...\n"
          << std::flush;
  if (Status st = RemoveThroughPraefect(*config, vs, path); !st.ok())
    return PlainError(inv, "repository removal failed: " + st.message());
  inv.out << "Repository removal completed.\n";
  inv.out << "Removing replication events...\n" << std::flush;
  if (Status st = RemoveJobs(store->get(), vs, path, true); !st.ok())
    return PlainError(inv, "remove replication events: " + st.message());
  inv.out << "Replication event removal completed.\n";
  return 0;
}

}  // namespace praefect::cli
