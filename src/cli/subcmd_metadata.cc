// praefect -config FILE metadata (-repository-id N | -virtual-storage S -relative-path R)
//
// As Praefect's: what the database records of one repository (its id,
// replica path, primary, generation) and of each replica (assigned,
// generation, health, whether it may be primary, when it was last
// verified), from the running praefect (GetRepositoryMetadata).
#include <ostream>

#include "cli/go_command.h"
#include "cli/operator_output.h"
#include "cli/praefect_client.h"
#include "praefect/praefect.grpc.pb.h"

namespace praefect::cli {
namespace {

const CommandSpec& Spec() {
  static const CommandSpec spec = [] {
    CommandSpec s;
    s.name = "metadata";
    s.usage = "show metadata about a repository";
    s.description =
        "Show what praefect records of a repository and of each of its replicas. Name the repository by\n"
        "its id, or by its virtual storage and relative path.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml metadata -repository-id 1\n"
        "Example: praefect -config /etc/praefect/config.toml metadata -virtual-storage default \\\n"
        "  -relative-path @hashed/ab/cd/abcd.git";
    s.flags = {Int64Flag("repository-id", "the repository's ID"),
               StringFlag("virtual-storage", "the repository's virtual storage"),
               StringFlag("relative-path", "the repository's relative path in the virtual storage", false,
                          {"repository"})};
    return s;
  }();
  return spec;
}

}  // namespace

int RunMetadata(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  const int64_t id = flags->Int64("repository-id");
  const std::string vs = flags->String("virtual-storage");
  const std::string path = flags->String("relative-path");
  gitaly::GetRepositoryMetadataRequest request;
  // As Praefect: an id of 0 counts as not given.
  if (id != 0) {
    if (!vs.empty() || !path.empty())
      return PlainError(inv, "virtual storage and relative path can't be provided with a repository ID");
    request.set_repository_id(id);
  } else if (!vs.empty() || !path.empty()) {
    if (vs.empty()) return PlainError(inv, "virtual storage is required with relative path");
    if (path.empty()) return PlainError(inv, "relative path is required with virtual storage");
    request.mutable_path()->set_virtual_storage(vs);
    request.mutable_path()->set_relative_path(path);
  } else {
    return PlainError(inv, "repository ID or virtual storage and relative path required");
  }
  auto config = LoadOperatorConfig(inv, "metadata");
  if (!config) return 1;
  auto channel = DialPraefect(*config, std::chrono::seconds(10));
  if (!channel.ok()) return PlainError(inv, "dial: " + channel.status().message());
  grpc::ClientContext ctx;
  PrepareContext(*config, &ctx, std::chrono::minutes(1));
  gitaly::GetRepositoryMetadataResponse metadata;
  grpc::Status st = gitaly::PraefectInfoService::NewStub(*channel)->GetRepositoryMetadata(&ctx, request, &metadata);
  if (!st.ok()) return PlainError(inv, "get metadata: " + GoRpcError(st));
  inv.out << FormatMetadata(metadata);
  return 0;
}

}  // namespace praefect::cli
