// praefect -config FILE dataloss [-virtual-storage S] [-partially-unavailable]
//
// As Praefect's: asks the running praefect (PraefectInfoService/Dataloss,
// one stream per virtual storage) which repositories are unavailable (no
// replica can serve as primary), or with -partially-unavailable which have
// an assigned replica that cannot, and prints them per virtual storage.
#include <algorithm>
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
    s.name = "dataloss";
    s.usage = "identify Gitaly Cluster repositories with data loss";
    s.description =
        "Identify repositories of a virtual storage that are unavailable: no replica is healthy and up to\n"
        "date, so praefect cannot serve them. With -partially-unavailable, also repositories with an assigned\n"
        "replica that is outdated or on an unhealthy node. Asks the running praefect; every virtual storage\n"
        "when -virtual-storage is not given.\n"
        "\n"
        "Example: praefect -config /etc/praefect/config.toml dataloss -virtual-storage default";
    s.flags = {StringFlag("virtual-storage", "name of the virtual storage to check (default: all)"),
               BoolFlag("partially-unavailable",
                        "also list available repositories with an assigned replica that is outdated or unhealthy")};
    return s;
  }();
  return spec;
}

}  // namespace

int RunDataloss(const Invocation& inv) {
  int code = 0;
  auto flags = ParseCommand(Spec(), inv, &code);
  if (!flags) return code;
  auto config = LoadOperatorConfig(inv, "dataloss");
  if (!config) return 1;
  std::vector<std::string> virtual_storages;
  if (flags->Has("virtual-storage")) {
    virtual_storages.push_back(flags->String("virtual-storage"));
  } else {
    for (const auto& vs : config->virtual_storages) virtual_storages.push_back(vs.name);
    std::sort(virtual_storages.begin(), virtual_storages.end());
  }
  const bool partially = flags->Bool("partially-unavailable");
  auto channel = DialPraefect(*config, std::chrono::seconds(10));
  if (!channel.ok()) return PlainError(inv, "error dialing: " + channel.status().message());
  auto stub = gitaly::PraefectInfoService::NewStub(*channel);
  for (const std::string& vs : virtual_storages) {
    grpc::ClientContext ctx;
    PrepareContext(*config, &ctx, std::chrono::minutes(10));
    gitaly::DatalossRequest request;
    request.set_virtual_storage(vs);
    request.set_include_partially_replicated(partially);
    auto reader = stub->Dataloss(&ctx, request);
    inv.out << "Virtual storage: " << vs << "\n" << std::flush;
    bool found = false;
    gitaly::DatalossResponse message;
    while (reader->Read(&message)) {
      found = found || message.repositories_size() > 0;
      inv.out << FormatDatalossMessage(message) << std::flush;
    }
    grpc::Status st = reader->Finish();
    if (!st.ok()) return PlainError(inv, "getting response: " + GoRpcError(st));
    if (!found) inv.out << DatalossNothingFound(partially);
  }
  return 0;
}

}  // namespace praefect::cli
