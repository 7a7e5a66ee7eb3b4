#include "cli/praefect_client.h"

#include <ostream>

#include "auth/token.h"
#include "cli/go_command.h"
#include "cli/load_config.h"

namespace praefect::cli {

std::optional<config::Config> LoadOperatorConfig(const Invocation& inv, std::string_view name) {
  if (!inv.config_path) {
    PlainError(inv, "error reading config file: open : no such file or directory");
    inv.err << "praefect " << name << ": give the configuration before the subcommand: praefect -config FILE " << name
            << " ...\n";
    return std::nullopt;
  }
  config::LoadResult result = LoadConfigFile(*inv.config_path);
  if (!result.ok()) {
    for (const config::Problem& p : result.problems) inv.err << config::FormatProblemForHumans(p) << "\n";
    PlainError(inv, "error reading config file: " + *inv.config_path +
                        " is invalid (see above); praefect configuration validate lists every problem");
    return std::nullopt;
  }
  return std::move(result.config);
}

StatusOr<PraefectAddress> PraefectAddressOf(const config::Config& config) {
  if (!config.socket_path.empty()) return PraefectAddress{"unix:" + config.socket_path, false, config.socket_path};
  if (!config.listen_addr.empty()) return PraefectAddress{config.listen_addr, false, config.listen_addr};
  if (!config.tls_listen_addr.empty()) return PraefectAddress{config.tls_listen_addr, true, config.tls_listen_addr};
  return FailedPrecondition("no Praefect address configured");
}

StatusOr<std::shared_ptr<grpc::Channel>> DialPraefect(const config::Config& config,
                                                      std::chrono::milliseconds timeout) {
  auto address = PraefectAddressOf(config);
  if (!address.ok()) return address.status();
  std::shared_ptr<grpc::ChannelCredentials> creds =
      address->tls ? grpc::SslCredentials(grpc::SslCredentialsOptions()) : grpc::InsecureChannelCredentials();
  auto channel = grpc::CreateChannel(address->target, creds);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + timeout))
    return Unavailable("no connection to praefect at " + address->target + " within " +
                       std::to_string(timeout.count() / 1000) +
                       " s: is praefect running, and listening there (socket_path, listen_addr, tls_listen_addr of "
                       "this configuration)?");
  return channel;
}

StatusOr<std::shared_ptr<grpc::Channel>> DialPraefectOnce(const config::Config& config,
                                                          std::chrono::milliseconds timeout) {
  auto address = PraefectAddressOf(config);
  if (!address.ok()) return address.status();
  std::shared_ptr<grpc::ChannelCredentials> creds =
      address->tls ? grpc::SslCredentials(grpc::SslCredentialsOptions()) : grpc::InsecureChannelCredentials();
  auto channel = grpc::CreateChannel(address->target, creds);
  const auto deadline = std::chrono::system_clock::now() + timeout;
  grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);
  while (state != GRPC_CHANNEL_READY) {
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN)
      return Unavailable("no praefect answers at " + address->target + " (the connection failed)");
    if (!channel->WaitForStateChange(state, deadline))
      return Unavailable("no praefect answers at " + address->target + " within " +
                         std::to_string(timeout.count() / 1000) + " s");
    state = channel->GetState(/*try_to_connect=*/true);
  }
  return channel;
}

void PrepareContext(const config::Config& config, grpc::ClientContext* ctx, std::chrono::milliseconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!config.auth.token.empty())
    ctx->AddMetadata(std::string(auth::kAuthorizationMetadataKey),
                     auth::BearerV2(config.auth.token, std::chrono::system_clock::now()));
}

std::string GoRpcError(const grpc::Status& status) {
  return "rpc error: code = " + praefect::GoCodeName(static_cast<int>(status.error_code())) + " desc = " + status.error_message();
}

}  // namespace praefect::cli
