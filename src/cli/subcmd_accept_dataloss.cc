// praefect -config FILE accept-dataloss -virtual-storage S -relative-path R -authoritative-storage T
//
// As Praefect's: makes T's replica the repository's latest generation
// (PraefectInfoService/SetAuthoritativeStorage on the running praefect),
// accepting that writes only other replicas had are lost. No replication
// job is queued: the other replicas are outdated from then on, and the next
// write or reconciliation brings them to T's state. Silent on success.
#include <ostream>

#include "cli/go_command.h"
#include "cli/praefect_client.h"
#include "praefect/praefect.grpc.pb.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "accept-dataloss";
    s.usage = "accept potential data loss in a repository";
    s.description =
        "Make the replica on the authoritative storage the latest version of the repository. The other\n"
        "replicas become outdated and are overwritten with its state by replication: writes that only they\n"
        "had are lost. Use praefect dataloss to choose the storage.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml accept-dataloss -virtual-storage default \\\n"
        "  -relative-path @hashed/ab/cd/abcd.git -authoritative-storage gitaly-2";
    s.flags = {StringFlag("virtual-storage", "name of the repository's virtual storage", true),
               StringFlag("relative-path", "relative path of the repository in the virtual storage", true,
                          {"repository"}),
               StringFlag("authoritative-storage", "storage whose replica becomes the latest version", true)};
    s.positional_error_plain = true;
    return s;
  }();
  return spec;
}

}  // namespace

int RunAcceptDataloss(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  auto config = LoadOperatorConfig(inv, "accept-dataloss");
  if (!config) return 1;
  auto channel = DialPraefect(*config, std::chrono::seconds(10));
  if (!channel.ok()) return PlainError(inv, "error dialing: " + channel.status().message());
  grpc::ClientContext ctx;
  PrepareContext(*config, &ctx, std::chrono::minutes(1));
  gitaly::SetAuthoritativeStorageRequest request;
  request.set_virtual_storage(flags->String("virtual-storage"));
  request.set_relative_path(flags->String("relative-path"));
  request.set_authoritative_storage(flags->String("authoritative-storage"));
  gitaly::SetAuthoritativeStorageResponse response;
  grpc::Status st = gitaly::PraefectInfoService::NewStub(*channel)->SetAuthoritativeStorage(&ctx, request, &response);
  if (!st.ok()) return ExitError(inv, "set authoritative storage: " + GoRpcError(st));
  return 0;
}

}  // namespace praefect::cli
