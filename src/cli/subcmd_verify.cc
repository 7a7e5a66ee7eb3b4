// praefect -config FILE verify (-repository-id N | -virtual-storage S [-storage T])
//
// As Praefect's: marks the selected replicas unverified
// (PraefectInfoService/MarkUnverified on the running praefect), so that
// background verification (src/reconcile/verifier.h) checks them next,
// within seconds, whatever their last check.
#include <ostream>

#include "cli/go_command.h"
#include "cli/praefect_client.h"
#include "praefect/praefect.grpc.pb.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "verify";
    s.usage = "marks a repository for verification";
    s.description =
        "This command marks replicas as unverified. Replicas are marked unverified by repository ID,\n"
        "by virtual storage, or by storage of a virtual storage; the background verifier verifies\n"
        "unverified replicas first.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml verify -virtual-storage default -storage gitaly-1";
    s.flags = {Int64Flag("repository-id", "the id of the repository to verify"),
               StringFlag("virtual-storage", "the virtual storage to verify"),
               StringFlag("storage", "the storage to verify")};
    return s;
  }();
  return spec;
}

}  // namespace

int RunVerify(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  const int64_t id = flags->Int64("repository-id");
  const std::string vs = flags->String("virtual-storage");
  const std::string storage = flags->String("storage");
  gitaly::MarkUnverifiedRequest request;
  if (id != 0) {
    if (!vs.empty() || !storage.empty())
      return PlainError(inv, "virtual storage and storage can't be provided with a repository ID");
    request.set_repository_id(id);
  } else if (!storage.empty()) {
    if (vs.empty()) return PlainError(inv, "virtual storage must be passed with storage");
    request.mutable_storage()->set_virtual_storage(vs);
    request.mutable_storage()->set_storage(storage);
  } else if (!vs.empty()) {
    request.set_virtual_storage(vs);
  } else {
    return PlainError(inv, "(repository id), (virtual storage) or (virtual storage, storage) required");
  }
  auto config = LoadOperatorConfig(inv, "verify");
  if (!config) return 1;
  if (auto address = PraefectAddressOf(*config); !address.ok())
    return PlainError(inv, "get node address: " + address.status().message());
  auto channel = DialPraefect(*config, std::chrono::seconds(10));
  if (!channel.ok()) return PlainError(inv, "dial: " + channel.status().message());
  grpc::ClientContext ctx;
  PrepareContext(*config, &ctx, std::chrono::minutes(1));
  gitaly::MarkUnverifiedResponse response;
  grpc::Status st = gitaly::PraefectInfoService::NewStub(*channel)->MarkUnverified(&ctx, request, &response);
  if (!st.ok()) return PlainError(inv, "verify replicas: " + GoRpcError(st));
  inv.out << response.replicas_marked() << " replicas marked unverified\n";
  return 0;
}

}  // namespace praefect::cli
